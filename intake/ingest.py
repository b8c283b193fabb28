"""``/v1/ingest/<source id>``: where third-party webhooks arrive (no API key).

A plain Django view rather than a DRF one: there is no authentication, no content
negotiation and no parsing to do (the body is stored as received), and it is the hottest
path of the service. ``IngestView`` at the end only routes to it and documents it.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.views import APIView

from deliveries import fanout
from hookstream import crypto
from hookstream.api import ratelimit
from hookstream.api.exceptions import error_body, log_database_error
from hookstream.api.serializers import ErrorSerializer
from hookstream.public_url import public_url
from intake import selectors, services
from intake.models import DedupStrategy, SchemaMode, Source, SourceStatus, VerificationType
from intake.schemas import payload_errors
from intake.serializers import IngestedSerializer
from intake.verification import (
    VerificationFailed,
    client_ip,
    ip_allowed,
    signature_header_for,
    signature_verify,
)

logger = logging.getLogger(__name__)

INGEST_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _error(request, status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse(error_body(request, status, message), status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _clean(text: str) -> str:
    # jsonb cannot hold U+0000; a NUL in a header or query value must not turn into a 503.
    return text.replace("\x00", "\ufffd")


def _masked_headers(source: Source) -> set[str]:
    """Lower-case names of the request headers stored as ``****``: the sender's credentials
    and the source's signature header (which the event does not need once verified).

    The header a source deduplicates on is kept: its value is the dedup key.
    """
    names = set(services.CREDENTIAL_HEADERS)
    if source.verification_type == VerificationType.STANDARD_WEBHOOKS:
        names.add("webhook-signature")
    elif source.verification_type:
        names.add(signature_header_for(source).lower())
    if source.dedup_enabled and source.dedup_strategy == DedupStrategy.HEADER_FIELD:
        names.discard(source.dedup_field.lower())
    return names


def _stored_headers(request, source: Source) -> dict:
    masked = _masked_headers(source)
    return {name: crypto.MASK if name.lower() in masked else _clean(value) for name, value in request.headers.items()}


def _rate_limited(request, ip: str | None) -> bool:
    limit = settings.HOOKSTREAM_INGEST_RATE_LIMIT_PER_MINUTE
    if not limit:
        return False
    try:
        return not ratelimit.check(request, f"ip:{ip or 'unknown'}", limit)
    except Exception:
        # The limiter's cache is down: accepting the webhook beats refusing every sender.
        logger.warning("ingest rate limit unavailable; request let through", exc_info=True)
        return False


def _slack_challenge(body: bytes) -> str | None:
    """Slack confirms a Request URL with a signed ``url_verification`` event whose
    ``challenge`` must come back; it is answered, not stored."""
    if b"url_verification" not in body:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(payload, dict) and payload.get("type") == "url_verification":
        return str(payload.get("challenge", ""))
    return None


def _signed_url(request) -> str:
    """The URL the sender posted to, as it saw it (Twilio signs it): the public base URL,
    the path and the query string exactly as received."""
    query = request.META.get("QUERY_STRING", "")
    return public_url(request, request.path + (f"?{query}" if query else ""))


def _read_body(request) -> bytes | None:
    """The body, or None when it is larger than HOOKSTREAM_MAX_BODY_BYTES."""
    limit = settings.HOOKSTREAM_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return body if len(body) <= limit else None


@csrf_exempt
def ingest(request, source_id: str):
    """Receive one webhook for a source.

    1. Per-IP rate limit (429), body size (413).
    2. Find the source (404; a paused source answers 503 so that senders retry later).
    3. Verify the signature (401, counted on the source), then the IP lists (403).
    4. Store the event and its deliveries in one transaction (``deliveries.fanout.event_ingest``),
       credential headers masked (``_masked_headers``).
    5. Answer 200 ``{"event_id", "source_id"}`` only once that transaction has committed;
       a database that is down or failing answers 503, never a 2xx.

    A chunked body (no ``Content-Length``) has been read by ``RequestInputMiddleware``.
    """
    if request.method not in INGEST_METHODS:
        return _error(request, 405, f"Method {request.method} is not accepted here.", Allow=", ".join(INGEST_METHODS))
    ip = client_ip(request.META, settings.HOOKSTREAM_TRUSTED_PROXY_HEADERS)
    if _rate_limited(request, ip):
        return _error(request, 429, "Too many requests from this address.", Retry_After=str(request.ratelimit[2]))
    body = _read_body(request)
    if body is None:
        return _error(request, 413, f"The body is larger than {settings.HOOKSTREAM_MAX_BODY_BYTES} bytes.")
    try:
        source, routes = selectors.source_for_ingest(source_id=source_id)
        if source is None:
            return _error(request, 404, "No such source.")
        if source.status == SourceStatus.PAUSED:
            return _error(request, 503, "This source is paused; try again later.", Retry_After="60")
        try:
            secret = crypto.decrypt(source.verification_secret) if source.verification_secret else ""
            signature_verify(
                source=source,
                secret=secret,
                body=body,
                headers=request.headers,
                url=_signed_url(request) if source.verification_type == VerificationType.TWILIO else "",
                content_type=request.META.get("CONTENT_TYPE", ""),
            )
        except VerificationFailed as exc:
            logger.info("ingest %s: signature rejected: %s", source.pk, exc)
            Source.objects.filter(pk=source.pk).update(verification_failure_count=F("verification_failure_count") + 1)
            return _error(request, 401, f"Signature verification failed: {exc}.")
        if not ip_allowed(ip, source.ip_allowlist, source.ip_denylist):
            return _error(request, 403, "This address may not send to this source.")
        if source.verification_type == VerificationType.SLACK and (challenge := _slack_challenge(body)):
            return JsonResponse({"challenge": challenge})
        incoming = services.Incoming(
            method=request.method,
            body=body,
            headers=_stored_headers(request, source),
            query={_clean(k): _clean(v[0]) if len(v) == 1 else [_clean(x) for x in v] for k, v in request.GET.lists()},
            content_type=_clean(request.META.get("CONTENT_TYPE", ""))[:200],
            source_ip=ip,
        )
        schema_errors = None
        if source.schema is not None:
            payload = incoming.parsed_payload()
            schema_errors = payload_errors(schema=source.schema, payload=payload, is_json=payload is not None)
            if schema_errors and source.schema_mode == SchemaMode.REJECT:
                body = error_body(request, 422, "The body does not match the source's schema; nothing was stored.")
                return JsonResponse({**body, "details": {"body": schema_errors}}, status=422)
        stored = fanout.event_ingest(source=source, routes=routes, incoming=incoming, schema_errors=schema_errors)
    except (OperationalError, InterfaceError) as exc:
        # Only a database that cannot be reached or is failing answers 503 (the sender retries).
        # Any other database error is a bug (a body jsonb refuses is stored unparsed, see
        # ``services.Incoming.parsed_payload``): it propagates as a logged 500.
        log_database_error(exc, f"ingest {source_id}")
        return _error(request, 503, "The database is unavailable; nothing was stored. Try again.", Retry_After="5")
    answer = {"event_id": stored.event.pk, "source_id": source.pk}
    if stored.deduplicated:
        answer["deduplicated"] = True
    return JsonResponse(answer, status=200)


_INGEST_DESCRIPTION = (
    "No API key. Verifies the source's signature (401), then its IP lists (403); a duplicate "
    "inside the dedup window answers 200 with the original event_id and deduplicated: true. "
    "The body is stored byte-exact, whatever its content type. The answer comes only after "
    "the event and its deliveries are committed; if the database is unavailable, 503. JSON that "
    "PostgreSQL cannot store (NaN, Infinity, 1e999, a lone surrogate, \\u0000 in a string, nesting "
    "deeper than 200) is stored byte-exact with payload null. Authorization, Cookie, "
    "Proxy-Authorization, X-Api-Key and the source's signature header are stored as ****."
)


def _documented_handler():
    def handler(self, request, source_id):
        raise NotImplementedError("IngestView.dispatch calls ingest() directly")

    return handler


_ERRORS = {
    401: OpenApiResponse(
        ErrorSerializer,
        "The signature is missing or wrong, or its timestamp is outside the tolerance; the error says which "
        "(nothing stored).",
    ),
    403: OpenApiResponse(ErrorSerializer, "The client address is not allowed by the source's IP lists."),
    404: OpenApiResponse(ErrorSerializer, "No such source."),
    422: OpenApiResponse(
        ErrorSerializer, "The body does not match the source's schema (schema_mode reject); details.body lists why."
    ),
    413: OpenApiResponse(ErrorSerializer, "The body is larger than HOOKSTREAM_MAX_BODY_BYTES."),
    429: OpenApiResponse(ErrorSerializer, "Too many requests from this client address."),
    503: OpenApiResponse(ErrorSerializer, "The database is unavailable or the source is paused; nothing stored."),
}


# Any body is accepted and stored raw; these are the types senders use, named so that client
# generators keep the operation (a "*/*" body makes them skip it).
_INGEST_BODY = {
    "application/json": {"type": "object", "additionalProperties": True, "description": "Any JSON value."},
    "application/x-www-form-urlencoded": {"type": "object", "additionalProperties": {"type": "string"}},
    "application/octet-stream": {"type": "string", "format": "binary", "description": "Any other body, raw."},
}


@extend_schema_view(
    **{
        method: extend_schema(
            summary=f"Ingest a webhook ({method.upper()})",
            description=_INGEST_DESCRIPTION,
            auth=[],
            request=_INGEST_BODY if method != "get" else None,
            responses={
                200: OpenApiResponse(IngestedSerializer, "Stored (or a duplicate inside the window)."),
                **_ERRORS,
            },
            operation_id=f"ingest_{method}",
            tags=["ingest"],
        )
        for method in ("get", "post", "put", "patch", "delete")
    }
)
class IngestView(APIView):
    """``/v1/ingest/<source id>`` for the router and the OpenAPI document.

    ``dispatch`` hands the request straight to :func:`ingest`, skipping DRF's request
    wrapping, authentication and negotiation on the hottest path; the handler methods
    below exist so that drf-spectacular documents the endpoint, and are never reached.
    """

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    http_method_names = [m.lower() for m in INGEST_METHODS]

    def dispatch(self, request, *args, **kwargs):
        return ingest(request, **kwargs)

    # Documentation only (see dispatch); one function per method, each with its own schema.
    get = _documented_handler()
    post = _documented_handler()
    put = _documented_handler()
    patch = _documented_handler()
    delete = _documented_handler()
