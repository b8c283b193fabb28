"""WebSocket destinations (spec §4 and §8).

**Channel destinations** (``channel_name`` and no ``url``) publish to the live stream
(``/v1/ws``): subscribers of that channel in the destination's organization receive::

    {"type": "event.delivered", "channel": <channel_name>,
     "data": {"event_id": …, "destination_id": …, "payload": <the raw body as a string>}}

The attempt succeeds when the frame is handed to the stream (no subscriber is not a failure).

**Outbound destinations** (with a ``url``): each attempt opens a connection to ``url``
(``provider_config.url`` or the destination's ``url``) with the configured ``headers`` and
sends one text frame::

    {"type": "event.delivered", "channel": <channel_name>,
     "data": {"event_id": …, "destination_id": …, "payload": …}}

``payload`` is the event's JSON payload (the body as a string when it is not JSON). With
``require_ack`` the server must answer ``{"type": "ack"}`` within the destination's timeout;
otherwise the attempt is a retryable failure. A refused handshake records the HTTP status and
is retried by the destination's policy, whatever the status (spec §3: a retry follows any
non-2xx answer); connection errors and time-outs are retryable. A host refused by the SSRF
guard (private networks, unless ``HOOKSTREAM_ALLOW_PRIVATE_NETWORKS``) is a permanent failure;
the connection goes to the very address the guard checked.
"""

from __future__ import annotations

import json
import re
import socket
from urllib.parse import urlsplit

import websocket

from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register
from hookstream import outbound, stream_bus
from hookstream.headers import control_character_error, headers_errors, mask_headers
from hookstream.ssrf import SSRFRefused

CHANNEL_RE = re.compile(r"^[a-z0-9._-]+$")
# The live stream's own channels (``/v1/ws``): a destination's channel_name cannot be one.
RESERVED_CHANNELS = {"events", "deliveries", "issues"}
# The most an attempt reads from the server: the handshake answer and the ack frames.
MAX_READ = 512 * 1024


@register
class WebSocketProvider(Provider):
    type = "websocket"
    label = "WebSocket"
    description = "Push each event as a JSON frame to a WebSocket server."
    uses_url = True
    url_schemes = ("ws", "wss")
    url_kind = "a ws:// or wss://"
    url_help = "ws:// or wss://, or give it under provider settings; leave it empty for a channel of the live stream."
    url_config_field = "url"
    fields = (
        ConfigField("url", help="ws:// or wss:// server (or the url column); none: a channel of the live stream"),
        ConfigField("channel_name", required=True, help="channel named in each frame, ^[a-z0-9._-]+$"),
        ConfigField("headers", kind=dict, headers=True, help="extra handshake headers"),
        ConfigField(
            "require_ack", kind=bool, default=False, help='wait for {"type": "ack"} within timeout_ms, else retry'
        ),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        errors = {}
        target = config.get("url") or url
        # No url: a channel destination of the live stream.
        if target and not target.startswith(("ws://", "wss://")):
            errors["provider_config.url"] = ["Must start with ws:// or wss://."]
        channel = config.get("channel_name", "")
        if not CHANNEL_RE.match(channel):
            errors["provider_config.channel_name"] = ["Must match ^[a-z0-9._-]+$."]
        elif not target and channel in RESERVED_CHANNELS:
            errors["provider_config.channel_name"] = [f"{channel!r} is a channel of the live stream itself."]
        if errors:
            raise ConfigError(errors)
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config or {}
        url = config.get("url") or destination.url
        if not url:
            return _publish_to_channel(destination, message, config.get("channel_name") or "")
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
        invalid = headers_errors(headers, max_count=None) or [e for e in [control_character_error(url)] if e]
        if invalid:  # rows written before the rule: never send a line a value could split
            return Outcome.permanent(f"invalid header or URL: {invalid[0]}", **base)
        with outbound.attempt_deadline(destination.timeout_ms) as deadline:
            outcome = _attempt(url, headers, frame, bool(config.get("require_ack")), deadline, base)
        return outcome


def _publish_to_channel(destination, message: OutboundMessage, channel: str) -> Outcome:
    """Hand the event to the live stream's ``channel`` of the destination's organization."""
    frame = {
        "type": "event.delivered",
        "data": {
            "event_id": message.event_id,
            "destination_id": str(destination.pk),
            "payload": message.body.decode("utf-8", errors="replace"),
        },
    }
    base = {"request_url": f"stream:{channel}", "request_method": "STREAM", "request_body_size": len(message.body)}
    try:
        stream_bus.publish(organization_id=destination.organization_id, channels=[channel], frame=frame, strict=True)
    except Exception as exc:  # noqa: BLE001 - Redis or the database: not handed over, so retried
        return Outcome.retry(f"live stream unavailable: {exc}"[:500], **base)
    return Outcome.success(**base)


def _attempt(
    url: str, headers: dict[str, str], frame: str, require_ack: bool, deadline: outbound.Deadline, base: dict
) -> Outcome:
    """Connect, hand-shake (no redirects), send the frame and wait for the ack, all within
    ``deadline``; the connection reads at most ``MAX_READ`` bytes."""
    timeout = deadline.remaining()
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
            redirect_limit=0,  # a redirect would go to a target nobody checked
        )
    except websocket.WebSocketBadStatusException as exc:
        sock.close()
        status = exc.status_code
        body = exc.resp_body.decode("utf-8", "replace") if isinstance(exc.resp_body, bytes) else ""
        kwargs = {**base, "response_status": status, "response_body": body[:4096]}
        kwargs["response_headers"] = outbound.capped_headers(exc.resp_headers or {})
        return Outcome.retry(f"handshake refused: HTTP {status}", **kwargs)
    except (websocket.WebSocketException, OSError) as exc:
        sock.close()
        if "redirect" in str(exc).lower():  # websocket-client's words for a 3xx at redirect_limit=0
            return Outcome.retry("the handshake answered a redirect (redirects are not followed)", **base)
        if deadline.expired or isinstance(exc, websocket.WebSocketTimeoutException):
            return Outcome.retry(f"timed out connecting: {deadline.describe() if deadline.expired else exc}", **base)
        return Outcome.retry(f"connection error: {exc!r}"[:500], **base)
    try:
        handshake = ws.handshake_response
        status = handshake.status if handshake is not None else 101
        base["response_status"] = status
        if status != 101:
            base["response_headers"] = outbound.capped_headers(getattr(handshake, "headers", None) or {})
            return Outcome.retry(f"handshake answered HTTP {status} (redirects are not followed)", **base)
        ws.send(frame)
        if not require_ack:
            return Outcome.success(**base)
        while True:
            remaining = deadline.remaining()
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
    except (websocket.WebSocketException, OSError) as exc:
        if deadline.expired:
            return Outcome.retry("no ack within the timeout", **base)
        if isinstance(exc, outbound.AnswerTooLarge):
            return Outcome.retry(str(exc), **base)
        if isinstance(exc, websocket.WebSocketConnectionClosedException):
            return Outcome.retry("connection closed before the ack", **base)
        return Outcome.retry(f"connection error: {exc!r}"[:500], **base)
    finally:
        try:
            ws.close(timeout=1)
        except Exception:  # noqa: BLE001 - closing must not change the outcome
            pass


def _connect_pinned(url: str, timeout: float) -> socket.socket:
    """Resolve the host once, check the address with the egress policy and connect to exactly
    that address (TLS with the URL's host name for wss://), so the handshake cannot be sent
    to a different answer of the same name (DNS rebinding). Raises SSRFRefused or OSError."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    sock = outbound.connect(parts.hostname or "", port, timeout=timeout, max_read=MAX_READ)
    if parts.scheme == "wss":
        try:
            sock = outbound.wrap_tls(sock, parts.hostname or "")
        except OSError:
            sock.close()
            raise
    return sock
