"""OpenAPI (drf-spectacular) for the API baseline, generic over every view.

- :class:`AutoSchema` gives the pagination envelope its real plural key (``destinations``,
  ``api_keys``…) from the view's ``pagination_key``.
- The authentication extensions describe API keys (``X-API-Key`` header or Bearer) and the
  session cookie.
- :func:`preprocess_optional_slash` documents optional-slash routes without the slash.
- :func:`postprocess_errors` adds the error body (component ``Error``) to every operation's
  error responses and the ``X-Request-Id`` / ``RateLimit-*`` headers to every response, so
  a view written later gets them without doing anything.
"""

import re

from django.conf import settings
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_COMPONENT = "Error"

ERROR_SCHEMA = {
    "type": "object",
    "description": "The body of every error response.",
    "properties": {
        "error": {"type": "string", "description": "A human-readable message."},
        "status": {"type": "integer", "description": "The HTTP status code, repeated."},
        "request_id": {"type": "string", "description": "The request's id, also in the X-Request-Id header."},
        "details": {
            "type": "object",
            "description": "Validation errors only: field → messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["error", "status", "request_id"],
}

_ERROR_DESCRIPTIONS = {
    "400": "Validation failed (details names each bad field), malformed JSON or a bad query parameter.",
    "401": "No API key or session, or an invalid or revoked API key.",
    "403": "Authenticated but not allowed (e.g. a session without its CSRF token on an unsafe method).",
    "404": "No such resource in the caller's organization.",
    "409": "Conflict (e.g. the slug is taken).",
    "413": "Request body too large.",
    "415": "Unsupported content type; send application/json.",
    "429": "Rate limited; see the RateLimit-* headers.",
}

_RESPONSE_HEADERS = {
    "X-Request-Id": {"schema": {"type": "string"}, "description": "The request's id (req_…)."},
}
_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed per window."},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in this window."},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the window resets."},
}

_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


class AutoSchema(openapi.AutoSchema):
    def _get_paginator(self):
        paginator = super()._get_paginator()
        if paginator is not None:
            # The envelope's list key is the view's, e.g. {"destinations": [...], ...}.
            paginator.key = getattr(self.view, "pagination_key", "results")
        return paginator


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "hookstream.api.authentication.APIKeyAuthentication"
    name = ["ApiKeyAuth", "BearerAuth"]

    def get_security_requirement(self, auto_schema):
        return [{"ApiKeyAuth": []}, {"BearerAuth": []}]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "hs_live_ + 64 hex characters."},
            {"type": "http", "scheme": "bearer", "bearerFormat": "hs_live_…", "description": "The same API key."},
        ]


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "hookstream.api.authentication.CsrfSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The web UI's session; unsafe methods also need the X-CSRFToken header.",
        }


def preprocess_optional_slash(endpoints, **kwargs):
    """Document ``/v1/destinations`` rather than ``/v1/destinations/`` for routes whose
    trailing slash is optional (``OptionalSlashRouter``)."""
    result = []
    for path, path_regex, method, callback in endpoints:
        if path_regex.endswith("/?$") and path.endswith("/") and len(path) > 1:
            path = path[:-1]
        result.append((path, path_regex, method, callback))
    return result


def _error_codes(path: str, method: str, operation: dict) -> list[str]:
    codes = ["400"] if operation.get("requestBody") or operation.get("parameters") else []
    if method in ("post", "put", "patch") and operation.get("requestBody"):
        codes.append("415")
    if any(requirement for requirement in operation.get("security", [])):
        codes += ["401", "403"]
    if re.search(r"{[^}]+}", path):
        codes.append("404")
    codes.append("429")
    return codes


def postprocess_errors(result, generator, request, public):
    """Add the ``Error`` component, the error responses and the common response headers."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    error_ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code in _error_codes(path, method, operation):
                responses.setdefault(code, {"description": _ERROR_DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code[0] in "45" and "$ref" not in response and "content" not in response:
                    response["content"] = {"application/json": {"schema": error_ref}}
                    if not response.get("description"):
                        response["description"] = _ERROR_DESCRIPTIONS.get(code, "Error.")
                headers = response.setdefault("headers", {})
                for name, header in _RESPONSE_HEADERS.items():
                    headers.setdefault(name, dict(header))
                # Rate limits count authenticated requests (a 401 has no organization to count).
                if code != "401" and any(requirement for requirement in operation.get("security", [])):
                    for name, header in _RATE_LIMIT_HEADERS.items():
                        headers.setdefault(name, dict(header))
    return result
