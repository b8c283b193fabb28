import io
import secrets

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from hookstream.api.exceptions import error_body


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


class RequestInputMiddleware:
    """Checks on a request's path and body before any view runs.

    1. A path with a NUL character names nothing: 404 (PostgreSQL refuses NUL in a text
       parameter, so looking it up would be a database error).
    2. A declared ``Content-Length`` above ``HOOKSTREAM_MAX_BODY_BYTES``: 413, nothing read.
    3. A chunked body (``Transfer-Encoding: chunked``, no ``Content-Length``): Django reads a
       body of the declared length only, so it would see an empty one. It is read here, up
       to the limit (413 beyond it), and handed on as if it had been sent with its length.
       That needs a server that decodes the chunks and ends the stream (gunicorn says so
       with ``wsgi.input_terminated``); on one that does not, the answer is 411.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            raise Http404("No such page.")
        limit = settings.HOOKSTREAM_MAX_BODY_BYTES
        meta = request.META
        declared = meta.get("CONTENT_LENGTH")
        if declared:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False
            if too_large:
                return _too_large(request, limit)
        elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            if not meta.get("wsgi.input_terminated"):
                return _error(request, 411, "Send the body with a Content-Length header.")
            try:
                body = meta["wsgi.input"].read(limit + 1)
            except Exception:  # the server's own error for a malformed chunk or a client gone
                return _error(request, 400, "The chunked body could not be read.")
            if len(body) > limit:
                return _too_large(request, limit)
            request._stream = LimitedStream(io.BytesIO(body), len(body))
            meta["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)


def _too_large(request, limit: int):
    return _error(request, 413, f"The body is larger than {limit} bytes.")


def _error(request, status: int, message: str):
    if request.path.startswith("/v1/"):
        return JsonResponse(error_body(request, status, message), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
