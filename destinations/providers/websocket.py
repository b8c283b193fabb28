"""WebSocket destinations (spec §4).

Each attempt opens a connection to ``url`` (``provider_config.url`` or the destination's
``url``) with the configured ``headers`` and sends one text frame::

    {"type": "event.delivered", "channel": <channel_name>,
     "data": {"event_id": …, "destination_id": …, "payload": …}}

``payload`` is the event's JSON payload (the body as a string when it is not JSON). With
``require_ack`` the server must answer ``{"type": "ack"}`` within the destination's timeout;
otherwise the attempt is a retryable failure. A refused handshake records the HTTP status:
4xx (other than 408/429) is permanent, anything else retryable; connection errors and
time-outs are retryable. A host refused by the SSRF guard (private networks, unless
``HOOKSTREAM_ALLOW_PRIVATE_NETWORKS``) is a permanent failure; the connection goes to the very
address the guard checked.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from urllib.parse import urlsplit

import websocket

from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register
from hookstream.headers import mask_headers
from hookstream.ssrf import SSRFRefused, resolve_and_check

CHANNEL_RE = re.compile(r"^[a-z0-9._-]+$")
RETRYABLE_HANDSHAKE = {408, 425, 429}


@register
class WebSocketProvider(Provider):
    type = "websocket"
    label = "WebSocket"
    description = "Push each event as a JSON frame to a WebSocket server."
    uses_url = True
    url_schemes = ("ws", "wss")
    url_kind = "a ws:// or wss://"
    url_help = "ws:// or wss://; or give it under provider settings."
    url_config_field = "url"
    fields = (
        ConfigField("url"),
        ConfigField("channel_name", required=True),
        ConfigField("headers", kind=dict, headers=True),
        ConfigField("require_ack", kind=bool, default=False),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        errors = {}
        target = config.get("url") or url
        if not target:
            errors["provider_config.url"] = ["A ws:// or wss:// url is required."]
        elif not target.startswith(("ws://", "wss://")):
            errors["provider_config.url"] = ["Must start with ws:// or wss://."]
        if not CHANNEL_RE.match(config.get("channel_name", "")):
            errors["provider_config.channel_name"] = ["Must match ^[a-z0-9._-]+$."]
        if errors:
            raise ConfigError(errors)
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config or {}
        url = config.get("url") or destination.url
        payload = message.payload
        if payload is None:
            payload = message.body.decode("utf-8", errors="replace")
        frame = json.dumps(
            {
                "type": "event.delivered",
                "channel": config.get("channel_name"),
                "data": {"event_id": message.event_id, "destination_id": str(destination.pk), "payload": payload},
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        headers["X-hookstream-Event-Id"] = message.event_id
        headers["X-hookstream-Delivery-Attempt"] = str(message.attempt_number)
        base = {
            "request_url": url,
            "request_method": "WS",
            "request_headers": mask_headers(headers),
            "request_body_size": len(frame.encode()),
        }
        timeout = max(destination.timeout_ms or 30000, 1) / 1000.0
        deadline = time.monotonic() + timeout
        try:
            sock = _connect_pinned(url, timeout)
        except SSRFRefused as exc:
            return Outcome.permanent(f"SSRF guard: {exc}", **base)
        except TimeoutError as exc:
            return Outcome.retry(f"timed out connecting: {exc}", **base)
        except (OSError, ValueError) as exc:
            return Outcome.retry(f"connection error: {exc!r}"[:500], **base)
        try:
            ws = websocket.create_connection(
                url,
                timeout=timeout,
                header=[f"{k}: {v}" for k, v in headers.items()],
                socket=sock,
                enable_multithread=False,
            )
        except websocket.WebSocketBadStatusException as exc:
            sock.close()
            status = exc.status_code
            body = exc.resp_body.decode("utf-8", "replace") if isinstance(exc.resp_body, bytes) else ""
            kwargs = {**base, "response_status": status, "response_body": body[:4096]}
            kwargs["response_headers"] = dict(exc.resp_headers or {})
            error = f"handshake refused: HTTP {status}"
            if 400 <= status < 500 and status not in RETRYABLE_HANDSHAKE:
                return Outcome.permanent(error, **kwargs)
            return Outcome.retry(error, **kwargs)
        except websocket.WebSocketTimeoutException as exc:
            sock.close()
            return Outcome.retry(f"timed out connecting: {exc}", **base)
        except (websocket.WebSocketException, OSError) as exc:
            sock.close()
            return Outcome.retry(f"connection error: {exc!r}"[:500], **base)
        try:
            base["response_status"] = getattr(ws, "status", None) or 101
            ws.send(frame)
            if not config.get("require_ack"):
                return Outcome.success(**base)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Outcome.retry("no ack within the timeout", **base)
                ws.settimeout(remaining)
                try:
                    reply = ws.recv()
                except websocket.WebSocketTimeoutException:
                    return Outcome.retry("no ack within the timeout", **base)
                if isinstance(reply, bytes):
                    reply = reply.decode("utf-8", "replace")
                try:
                    data = json.loads(reply)
                except (TypeError, ValueError):
                    continue
                if isinstance(data, dict) and data.get("type") == "ack":
                    return Outcome.success(response_body=reply[:4096], **base)
                if isinstance(data, dict) and data.get("type") in ("nack", "error"):
                    return Outcome.retry(f"server answered {data.get('type')}", response_body=reply[:4096], **base)
        except websocket.WebSocketConnectionClosedException:
            return Outcome.retry("connection closed before the ack", **base)
        except (websocket.WebSocketException, OSError) as exc:
            return Outcome.retry(f"connection error: {exc!r}"[:500], **base)
        finally:
            try:
                ws.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing must not change the outcome
                pass


def _connect_pinned(url: str, timeout: float):
    """Resolve the host once, check the address with the SSRF guard and connect to exactly
    that address (TLS with the URL's host name for wss://), so the handshake cannot be sent
    to a different answer of the same name (DNS rebinding). Raises SSRFRefused or OSError."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    address = resolve_and_check(parts.hostname or "", port)
    sock = socket.create_connection((address, port), timeout=timeout)
    if parts.scheme == "wss":
        try:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        except OSError:
            sock.close()
            raise
    return sock
