import secrets

from django.utils.deprecation import MiddlewareMixin


class RequestIdMiddleware(MiddlewareMixin):
    """Give every request an id (``req_<hex>``) and answer it in ``X-Request-Id``."""

    def process_request(self, request):
        request.request_id = "req_" + secrets.token_hex(12)

    def process_response(self, request, response):
        request_id = getattr(request, "request_id", None)
        if request_id:
            response["X-Request-Id"] = request_id
        limit = getattr(request, "ratelimit", None)
        if limit is not None:
            response["RateLimit-Limit"] = str(limit[0])
            response["RateLimit-Remaining"] = str(limit[1])
            response["RateLimit-Reset"] = str(limit[2])
        return response
