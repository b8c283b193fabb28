"""OpenAPI (drf-spectacular) for the API baseline, generic over every view.

- :class:`AutoSchema` gives the pagination envelope its real plural key (``destinations``,
  ``api_keys``…) from the view's ``pagination_key``.
- The authentication extensions describe API keys (``X-API-Key`` header or Bearer) and the
  session cookie.
- :func:`preprocess_optional_slash` documents optional-slash routes without the slash.
- :func:`postprocess_errors` adds the error body (component ``Error``) to every operation's
  error responses and the ``X-Request-Id`` / ``RateLimit-*`` headers to every response, as
  references to shared components, so a view written later gets them without doing anything.
- Operation descriptions are written for API users in :data:`OPERATION_DESCRIPTIONS`; the
  code's docstrings (written for developers) never reach the public document.
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


# What each operation does, for API users. Operations not named here have their summary only.
OPERATION_DESCRIPTIONS = {
    "auth_api_keys_list": "API keys of the signed-in user's organization, revoked ones included. "
    "Needs the session of the web UI: an API key cannot list, create or revoke keys.",
    "auth_api_keys_create": "Creates an API key. The raw key is in this response only; store it now.",
    "auth_api_keys_destroy": "Revokes an API key at once; it stays listed with `revoked: true`.",
    "connections_list": "Connections route a source's events to a destination, newest first.",
    "connections_create": "Routes a source's events to a destination, optionally through filter rules and a "
    "JSONata transform.",
    "delivery_attempts_list": "Every delivery attempt, newest first. Filter by destination, event, status or "
    "`is_dlq` for dead letters.",
    "delivery_attempts_retrieve": "One attempt: the request sent (secrets masked), the answer, duration and error.",
    "delivery_attempts_retry_create": "Delivers the attempt's event to its destination again, now.",
    "destinations_list": "Destinations, newest first, with their real delivery counts.",
    "destinations_create": "Creates a destination. Send `template` to start from a catalog template; secrets in "
    "`provider_config` and `signing_config` are encrypted and masked in every answer.",
    "destinations_partial_update": "Changes any field. Send a masked secret back unchanged to keep it.",
    "destinations_destroy": "Deletes the destination and cancels its pending, scheduled and held deliveries; "
    "its history stays.",
    "destinations_circuit_retrieve": "The circuit breaker: closed, open (deliveries held) or half-open (one probe).",
    "destinations_circuit_reset_create": "Closes the circuit; the deliveries it held resume, oldest first.",
    "destinations_dead_letters_list": "Deliveries that exhausted their retries, with the reason and last error.",
    "destinations_dead_letters_retry_create": "Starts a replay job that retries the dead letters, optionally only "
    "those of a time range.",
    "destinations_test_create": "Sends a sample event to the destination and records the attempt.",
    "destinations_templates_retrieve": "Ready-made destination settings (Slack, Discord, PagerDuty, SQS…).",
    "events_list": "Received events, newest first. Filter by source, status and time.",
    "events_retrieve": "One event with its headers, body, deliveries and their attempts.",
    "events_retry_create": "Retries the event's failed and dead deliveries.",
    "metrics_overview_retrieve": "Today's events, deliveries, success rate, latency, dead letters and open circuits.",
    "replay_create": "Re-delivers the events of a time range to a destination at a bounded rate, as a job.",
    "replay_retrieve": "A replay job's status and progress.",
    "sources_list": "Sources receive webhooks at their ingest URL, newest first.",
    "sources_create": "Creates a source and its ingest URL, with optional signature verification and de-duplication.",
    "topics_list": "Topics your own code publishes events to, newest first.",
    "topics_publish_create": "Publishes an event to the topic's subscriptions; `Idempotency-Key` de-duplicates.",
}


class AutoSchema(openapi.AutoSchema):
    def get_description(self):
        # Never the docstrings: they are written for the code's maintainers.
        return OPERATION_DESCRIPTIONS.get(self.get_operation_id(), "")

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


def _header_ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def postprocess_errors(result, generator, request, public):
    """Add the ``Error`` component, the error responses and the common response headers.

    Headers and the standard error responses are components, referenced from each operation,
    so that the document stays small as operations are added.
    """
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    error_ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    header_components = components.setdefault("headers", {})
    header_components.update(
        {name: dict(header) for name, header in {**_RESPONSE_HEADERS, **_RATE_LIMIT_HEADERS}.items()}
    )
    response_components = components.setdefault("responses", {})
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _HTTP_METHODS:
                continue
            limited = any(requirement for requirement in operation.get("security", []))
            responses = operation.setdefault("responses", {})
            for code in _error_codes(path, method, operation):
                if code not in responses:
                    # Rate limits count authenticated requests (a 401 has no organization to count).
                    name = f"Error{code}" + ("Limited" if limited and code != "401" else "")
                    response_components.setdefault(
                        name, _error_response(_ERROR_DESCRIPTIONS[code], error_ref, limited and code != "401")
                    )
                    responses[code] = {"$ref": f"#/components/responses/{name}"}
            for code, response in responses.items():
                if "$ref" in response:
                    continue
                if code[0] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": error_ref}}
                    if not response.get("description"):
                        response["description"] = _ERROR_DESCRIPTIONS.get(code, "Error.")
                headers = response.setdefault("headers", {})
                for name in _response_header_names(limited and code != "401"):
                    headers.setdefault(name, _header_ref(name))
    return result


def _response_header_names(limited: bool) -> list[str]:
    return [*_RESPONSE_HEADERS, *(_RATE_LIMIT_HEADERS if limited else ())]


def _error_response(description: str, error_ref: dict, limited: bool) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": error_ref}},
        "headers": {name: _header_ref(name) for name in _response_header_names(limited)},
    }
