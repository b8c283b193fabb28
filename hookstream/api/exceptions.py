"""One error body for every error: ``{"error", "status", "request_id"}`` (+ ``details``).

The domain errors of services (``hookstream.errors``) are mapped here to their status codes:
``Conflict`` 409, ``NotFound`` 404, Django's ``ValidationError`` 400 with ``details``.
"""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hookstream import errors

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable."
    default_code = "unavailable"


def log_database_error(exc: DatabaseError, what: str) -> None:
    """Log a database error answered with 503: an outage (the server is down or unreachable)
    as one line per request — during an outage every request fails the same way — anything
    else with its traceback."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.warning("database unavailable (%s): %s", what, first_line)
    else:
        logger.exception("database error (%s)", what, exc_info=exc)


def error_body(request, status_code: int, message: str, details=None) -> dict:
    body = {"error": message, "status": status_code, "request_id": getattr(request, "request_id", None)}
    if details:
        body["details"] = details
    return body


def _flatten_details(detail) -> dict:
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub_key, sub_value in _flatten_details(value).items():
                    out[f"{key}.{sub_key}"] = sub_value
            elif isinstance(value, list):
                out[key] = [str(v) if not isinstance(v, dict) else str(v) for v in value]
            else:
                out[key] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def error_details(exc: Exception) -> dict[str, list[str]]:
    """``{field: [messages]}`` of a validation error, Django's or DRF's (the API's ``details``);
    any other error gives its message under ``non_field_errors``. Nested fields are joined
    with dots (``provider_config.token``), list items by index (``ip_allowlist.3``)."""
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
        return {"non_field_errors": [str(m) for m in exc.messages]}
    if isinstance(exc, exceptions.APIException):
        return _flatten_details(exc.detail)
    return {"non_field_errors": [str(exc)]}


def _summary(details: dict) -> str:
    parts = []
    for field, messages in details.items():
        message = messages[0] if messages else "invalid"
        parts.append(message if field == "non_field_errors" else f"{field}: {message}")
    return "Validation failed: " + "; ".join(parts)


def exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, errors.Conflict):
        exc = Conflict(exc.message)
    elif isinstance(exc, errors.NotFound):
        exc = exceptions.NotFound(exc.message)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # Services validate with Django's ValidationError ({field: [messages]}); same 400.
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # Only an unreachable or failing database server is a 503 (retry later); a
        # DataError is a value of the request that PostgreSQL refuses, any other error a bug.
        log_database_error(exc, "API request")
        exc = ServiceUnavailable("The database is unavailable; nothing was stored. Try again.")
    elif isinstance(exc, DataError):
        logger.info("value refused by the database: %s", str(exc).strip().splitlines()[:1])
        exc = exceptions.ValidationError(
            ["A value in the request cannot be stored or searched (for example a NUL character)."]
        )
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(f"The body is larger than {settings.HOOKSTREAM_MAX_BODY_BYTES} bytes.")
    elif isinstance(exc, RecursionError):
        exc = exceptions.ParseError("The request is nested too deeply.")

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body(request, 500, "Internal server error."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    if isinstance(exc, exceptions.ValidationError):
        details = _flatten_details(exc.detail)
        body = error_body(request, response.status_code, _summary(details), details)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        if isinstance(detail, (dict, list)):
            details = _flatten_details(detail)
            body = error_body(request, response.status_code, _summary(details), details)
        else:
            body = error_body(request, response.status_code, str(detail))
    response.data = body
    return response


def _json_error(request, status_code: int, message: str) -> JsonResponse:
    return JsonResponse(error_body(request, status_code, message), status=status_code)


def handler404(request, exception=None):
    if request.path.startswith("/v1/"):
        return _json_error(request, 404, "Not found.")

    return page_not_found(request, exception)


def handler500(request):
    return _json_error(request, 500, "Internal server error.")


def handler400(request, exception=None):
    return _json_error(request, 400, "Bad request.")


def handler403(request, exception=None):
    return _json_error(request, 403, "Forbidden.")
