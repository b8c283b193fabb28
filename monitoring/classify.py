"""The kind of a failed attempt, for grouping failures into issues."""

from __future__ import annotations

from monitoring.models import ErrorType


def error_type_of(*, response_status: int | None, error: str) -> str:
    """``http_5xx`` / ``http_4xx`` from the answer's status; otherwise from the error the
    provider reported (the HTTP provider's wording: "timed out after…", "connection error:…",
    "SSRF guard:…", "invalid URL:…")."""
    if response_status is not None:
        if response_status >= 500:
            return ErrorType.HTTP_5XX
        if response_status >= 400:
            return ErrorType.HTTP_4XX
    text = (error or "").lower()
    if "timed out" in text or "timeout" in text:
        return ErrorType.TIMEOUT
    if text.startswith(("ssrf guard", "invalid url", "cannot prepare")):
        return ErrorType.REFUSED
    if "connect" in text or "refused" in text or "unreachable" in text or "name or service" in text:
        return ErrorType.CONNECTION
    if "transform" in text:
        return ErrorType.TRANSFORM_FAILED
    return ErrorType.PROVIDER_ERROR
