"""HTTP/webhook destinations (spec §4).

One request per attempt: ``method`` to ``url`` with the destination's ``headers``, auth,
the ``X-hookstream-*`` headers and an optional signature. Success is a 2xx answer; any other
answer, a time-out or a connection error is retryable; redirects are not followed (a 3xx is
a failure). A target refused by the SSRF guard is a permanent failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
import urllib3

from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register
from hookstream.crypto import mask

# Read at most this much of a response (the attempt row keeps a shorter prefix); a longer
# body closes the connection instead of being drained.
MAX_RESPONSE_READ = 256 * 1024
DEFAULT_SIGNATURE_HEADER = "X-hookstream-Signature"
USER_AGENT = "hookstream/1.0"
# Header names whose values are secrets: masked in the attempt row.
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)
_SECRET_HEADER = re.compile(r"(authorization|token|secret|api[-_]?key|password|cookie|signature-key)", re.I)


@register
class HttpProvider(Provider):
    type = "http"
    uses_url = True
    fields = (
        ConfigField("auth_type", choices=("none", "bearer", "basic", "api_key"), default="none"),
        ConfigField("token", secret=True, help="bearer token"),
        ConfigField("username"),
        ConfigField("password", secret=True),
        ConfigField("api_key_header", default="X-API-Key"),
        ConfigField("api_key", secret=True),
        # PagerDuty Events v2 puts its integration key in the body (templates_catalog "pagerduty").
        ConfigField("routing_key", secret=True),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        errors = {}
        auth = config.get("auth_type", "none")
        needs = {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("api_key",)}.get(auth, ())
        for name in needs:
            if not config.get(name):
                errors[f"provider_config.{name}"] = [f"Required when auth_type is {auth!r}."]
        if errors:
            raise ConfigError(errors)
        return config

    # --- sending ------------------------------------------------------------------------

    def send(self, destination, message: OutboundMessage) -> Outcome:
        """Send one attempt. ``destination`` carries decrypted ``provider_config`` and
        ``signing_config`` (the engine decrypts them)."""
        config = destination.provider_config or {}
        method = (destination.method or "POST").upper()
        url = destination.url
        body, content_type = shaped_body(destination, message, config)
        now = datetime.now(UTC)
        headers, secret_values = request_headers(destination, message, config, body, content_type, now)
        masked = mask_headers(headers, secret_values)
        base = {
            "request_url": url,
            "request_method": method,
            "request_headers": masked,
            "request_body_size": len(body),
        }
        response = pooled_request(method, url, base=base, timeout_ms=destination.timeout_ms, body=body, headers=headers)
        if isinstance(response, Outcome):
            return response

        try:
            text = _read_pooled_body(response)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Outcome.retry(f"reading the response failed: {_short(exc)}", response_status=response.status, **base)
        result = {
            **base,
            "response_status": response.status,
            "response_headers": dict(response.headers),
            "response_body": text,
        }
        if 200 <= response.status < 300:
            return Outcome.success(**result)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if 300 <= response.status < 400:
            error = f"HTTP {response.status} (redirects are not followed)"
        else:
            error = f"HTTP {response.status}"
        return Outcome.retry(error, retry_after=retry_after, **result)


def shaped_body(destination, message: OutboundMessage, config: dict) -> tuple[bytes, str]:
    """The body to send: a template's shape of the payload when the destination has one."""
    template = getattr(destination, "template", "") or ""
    if template:
        try:
            from templates_catalog.catalog import shape_body
        except ImportError:  # the catalog is optional: send the event unchanged
            shape_body = None
        if shape_body is not None:
            shaped = shape_body(
                template,
                payload=message.payload,
                event_id=message.event_id,
                destination_name=destination.name,
                config=config,
            )
            if shaped is not None:
                return json.dumps(shaped, separators=(",", ":"), ensure_ascii=False).encode(), "application/json"
    return message.body, message.content_type or "application/octet-stream"


def request_headers(destination, message, config, body, content_type, now) -> tuple[dict[str, str], set[str]]:
    """Every header of the request, and the secret values among them (to mask)."""
    headers: dict[str, str] = {"User-Agent": USER_AGENT, "Content-Type": content_type}
    for name, value in (destination.headers or {}).items():
        if isinstance(name, str) and name and value is not None:
            headers[name] = str(value)
    secrets: set[str] = set()
    auth = config.get("auth_type") or "none"
    if auth == "bearer" and config.get("token"):
        headers["Authorization"] = f"Bearer {config['token']}"
        secrets.add(config["token"])
    elif auth == "basic" and config.get("username") is not None:
        raw = f"{config.get('username', '')}:{config.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        if config.get("password"):
            secrets.add(config["password"])
    elif auth == "api_key" and config.get("api_key"):
        headers[config.get("api_key_header") or "X-API-Key"] = config["api_key"]
        secrets.add(config["api_key"])
    unix = int(now.timestamp())
    headers["X-hookstream-Event-Id"] = message.event_id
    headers["X-hookstream-Delivery-Attempt"] = str(message.attempt_number)
    headers["X-hookstream-Timestamp"] = str(unix)
    headers.update(signature_headers(getattr(destination, "signing_config", None), body, message.event_id, now))
    return headers, secrets


def signature_headers(signing: dict | None, body: bytes, event_id: str, now: datetime) -> dict[str, str]:
    """HMAC (hex, optionally over ``{ts}.{body}``) or Standard Webhooks signature headers."""
    if not signing or not signing.get("secret"):
        return {}
    unix = int(now.timestamp())
    if signing.get("mode") == "standard_webhooks":
        from standardwebhooks.webhooks import Webhook

        # webhook-id is the event id: stable across retries, so receivers can deduplicate.
        try:
            signature = Webhook(signing["secret"]).sign(event_id, now, body.decode("utf-8"))
        except UnicodeDecodeError:
            # The library signs text; a binary body is signed over its bytes with the same rule.
            key = base64.b64decode(signing["secret"].removeprefix("whsec_"))
            mac = hmac.new(key, f"{event_id}.{unix}.".encode() + body, hashlib.sha256).digest()
            signature = "v1," + base64.b64encode(mac).decode()
        return {"webhook-id": event_id, "webhook-timestamp": str(unix), "webhook-signature": signature}
    algorithm = signing.get("algorithm") or "sha256"
    digest = hashlib.sha1 if algorithm == "sha1" else hashlib.sha256
    signed = f"{unix}.".encode() + body if signing.get("include_timestamp") else body
    mac = hmac.new(str(signing["secret"]).encode(), signed, digest).hexdigest()
    prefix = signing.get("prefix")
    if prefix is None:
        prefix = f"{algorithm}="
    return {signing.get("header") or DEFAULT_SIGNATURE_HEADER: f"{prefix}{mac}"}


def mask_headers(headers: dict[str, str], secrets: set[str]) -> dict[str, str]:
    """The headers as the attempt row stores them: secret values masked (last 4 chars)."""
    masked = {}
    for name, value in headers.items():
        if _SECRET_HEADER.search(name) or value in secrets:
            scheme, _, rest = value.partition(" ")
            if rest and scheme.lower() in {"bearer", "basic", "token"}:
                masked[name] = f"{scheme} {mask(rest)}"
            else:
                masked[name] = mask(value)
        else:
            masked[name] = value
    return masked


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - time.time(), 0.0)


def _read_pooled_body(response) -> str:
    """Read at most ``MAX_RESPONSE_READ`` bytes; a fully read response keeps its connection."""
    try:
        data = response.read(MAX_RESPONSE_READ + 1)
    except BaseException:
        response.close()  # a half-read connection cannot be reused
        raise
    if len(data) > MAX_RESPONSE_READ:
        response.close()  # do not drain a huge body: drop the connection instead
        data = data[:MAX_RESPONSE_READ]
    else:
        response.release_conn()
    charset = _CHARSET.search(response.headers.get("Content-Type", ""))
    encoding = charset.group(1) if charset else "utf-8"
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", errors="replace")


def _failure_outcome(exc: Exception, *, base: dict, timeout_ms: int | None) -> Outcome | None:
    """The failure ``Outcome`` of a request that got no answer (None: not a request failure).

    A refused or invalid target is permanent; a time-out or connection error is retried. One
    classification for both clients (requests and urllib3), so every provider agrees.
    """
    from hookstream.ssrf import SSRFRefused

    if isinstance(exc, SSRFRefused):
        return Outcome.permanent(f"SSRF guard: {exc}", **base)
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            urllib3.exceptions.LocationParseError,
        ),
    ):
        return Outcome.permanent(f"invalid URL: {_short(exc)}", **base)
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # (a ConnectTimeoutError subclass in urllib3)
        return Outcome.retry(f"connection error: {_short(exc)}", **base)
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)):
        return Outcome.retry(f"timed out after {timeout_ms} ms: {_short(exc)}", **base)
    if isinstance(exc, (requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError, OSError)):
        # OSError: name resolution failures raised by the pinning adapter, among others.
        cause = _ssrf_cause(exc)
        if cause is not None:
            return Outcome.permanent(f"SSRF guard: {cause}", **base)
        return Outcome.retry(f"connection error: {_short(exc)}", **base)
    if isinstance(exc, requests.exceptions.RequestException):
        return Outcome.retry(f"request failed: {_short(exc)}", **base)
    return None


def pooled_request(method: str, url: str, *, base: dict, timeout_ms: int | None, body: bytes, headers: dict):
    """:func:`guarded_request` for the HTTP provider, on the pinned urllib3 pool directly
    (``deliveries.http_client.request``). Returns the unread response, or the failure
    ``Outcome`` (:func:`_failure_outcome`)."""
    from deliveries import http_client

    timeout = max(timeout_ms or 30000, 1) / 1000.0
    try:
        return http_client.request(
            method, url, body=body, headers=headers, connect_timeout=min(timeout, 10.0), read_timeout=timeout
        )
    except Exception as exc:  # noqa: BLE001 - classified below; anything else is re-raised
        outcome = _failure_outcome(exc, base=base, timeout_ms=timeout_ms)
        if outcome is None:
            raise
        return outcome


def guarded_request(method: str, url: str, *, base: dict, timeout_ms: int | None, **kwargs):
    """One request through the pooled, SSRF-pinned session of this worker thread.

    Returns the response, or the failure ``Outcome`` for a request that got no answer
    (:func:`_failure_outcome`). Shared by the providers that speak HTTP through requests
    (kafka, rabbitmq).
    """
    from deliveries import http_client

    timeout = max(timeout_ms or 30000, 1) / 1000.0
    try:
        return http_client.session().request(
            method, url, timeout=(min(timeout, 10.0), timeout), allow_redirects=False, **kwargs
        )
    except Exception as exc:  # noqa: BLE001 - classified below; anything else is re-raised
        outcome = _failure_outcome(exc, base=base, timeout_ms=timeout_ms)
        if outcome is None:
            raise
        return outcome


def _ssrf_cause(exc: BaseException) -> BaseException | None:
    from hookstream.ssrf import SSRFRefused

    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SSRFRefused):
            return current
        current = current.__cause__ or current.__context__
    return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 500 else text[:500] + "…"
