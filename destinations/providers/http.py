"""HTTP/webhook destinations (spec §4).

One request per attempt: ``method`` to ``url`` with the destination's ``headers``, auth,
the ``X-hookstream-*`` headers and an optional signature. Success is a 2xx answer; any other
answer, a time-out or a connection error is retryable; redirects are not followed (a 3xx is
a failure). A target refused by the SSRF guard is a permanent failure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register
from destinations.providers.transport import basic_auth, exchange
from destinations.signing import signature_headers
from hookstream import outbound
from hookstream.headers import headers_errors, mask_headers
from templates_catalog.catalog import shape_body

USER_AGENT = "hookstream/1.0"


@register
class HttpProvider(Provider):
    type = "http"
    label = "HTTP webhook"
    description = "A webhook: POST (or PUT/PATCH) to an HTTP endpoint, optionally signed."
    uses_url = True
    url_required = True
    url_schemes = ("http", "https")
    url_kind = "an http:// or https://"
    url_help = "http:// or https://"
    signs = True
    fields = (
        ConfigField(
            "auth_type",
            choices=("none", "bearer", "basic", "api_key"),
            default="none",
            help="how requests authenticate: Authorization Bearer, Basic, or an API key header",
        ),
        ConfigField("token", secret=True, help="bearer token", header_value=True),
        ConfigField("username", help="basic auth user (auth_type basic)"),
        ConfigField("password", secret=True, help="basic auth password (auth_type basic)"),
        ConfigField(
            "api_key_header",
            default="X-API-Key",
            header_name=True,
            help="header that carries api_key (auth_type api_key)",
        ),
        ConfigField("api_key", secret=True, header_value=True, help="the API key (auth_type api_key)"),
        # PagerDuty Events v2 puts its integration key in the body (templates_catalog "pagerduty").
        ConfigField(
            "routing_key",
            secret=True,
            help="PagerDuty Events v2 integration key, put in the body by the pagerduty template",
        ),
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
        invalid = headers_errors(headers, max_count=None)
        if invalid:  # rows written before the rule: refused here rather than by the HTTP library
            return Outcome.permanent(f"invalid header: {invalid[0]}", **base)
        with outbound.attempt_deadline(destination.timeout_ms):
            answer = exchange(method, url, base=base, timeout_ms=destination.timeout_ms, body=body, headers=headers)
        if isinstance(answer, Outcome):
            return answer
        result = {
            **base,
            "response_status": answer.status,
            "response_headers": answer.headers,
            "response_body": answer.text,
        }
        if 200 <= answer.status < 300:
            return Outcome.success(**result)
        if 300 <= answer.status < 400:
            error = f"HTTP {answer.status} (redirects are not followed)"
        else:
            error = f"HTTP {answer.status}"
        return Outcome.retry(error, retry_after=answer.retry_after, **result)


def shaped_body(destination, message: OutboundMessage, config: dict) -> tuple[bytes, str]:
    """The body to send: a template's shape of the payload when the destination has one."""
    template = getattr(destination, "template", "") or ""
    if template:
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
        headers["Authorization"] = basic_auth(config.get("username", ""), config.get("password", ""))
        if config.get("password"):
            secrets.add(config["password"])
    elif auth == "api_key" and config.get("api_key"):
        headers[config.get("api_key_header") or "X-API-Key"] = config["api_key"]
        secrets.add(config["api_key"])
    unix = int(now.timestamp())
    headers["X-hookstream-Event-Id"] = message.event_id
    headers["X-hookstream-Delivery-Attempt"] = str(message.attempt_number)
    headers["X-hookstream-Timestamp"] = str(unix)
    signing = getattr(destination, "signing_config", None)
    headers.update(signature_headers(signing, body=body, event_id=message.event_id, timestamp=now))
    return headers, secrets
