"""RabbitMQ destinations (HTTP Management API, or AMQP with publisher confirms).

``protocol: http`` (default): ``POST {url}/api/exchanges/{vhost}/{exchange}/publish`` with Basic
auth and the spec §4 body (``properties.content_type`` is ``application/json`` for a JSON
body; the event's own content type, when it differs, is in the ``hookstream-content-type``
header). Success = 2xx **and** ``"routed": true``. Every other answer —
``routed: false`` ("unroutable"), 401/403 (bad credentials), 404 (no such exchange/vhost), 5xx —
is retried by the destination's policy and then dead-lettered, as for HTTP (spec §3): a queue
may be bound, or the credentials fixed, within the retry window. Time-outs and connection
errors are retried too.

``protocol: amqp`` (``url`` is ``amqp://host:port`` or ``amqps://``): pika ``BlockingConnection``
with publisher confirms and ``mandatory=True``, opened by ``hookstream.outbound.amqp_connect``
(the host is resolved and checked once and pika connects to exactly that address). An
unroutable message, refused credentials, a missing exchange, a nack and connection errors are
retried by policy; permanent are only a target refused by the SSRF guard (refused before any
socket is opened) and a URL that is not AMQP. One connection per destination
per thread is reused while it stays open.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote, urlsplit

from django.conf import settings

from destinations.providers import transport
from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register
from hookstream import outbound
from hookstream.headers import mask_headers
from hookstream.ssrf import SSRFRefused

_local = threading.local()


@register
class RabbitMqProvider(Provider):
    type = "rabbitmq"
    label = "RabbitMQ"
    description = "Publish each event to a RabbitMQ exchange."
    fields = (
        ConfigField(
            "url",
            required=True,
            url_schemes=("http", "https", "amqp", "amqps"),
            help="Management API base (http(s)://host:15672), or amqp(s)://host:port with protocol amqp",
        ),
        ConfigField("vhost", default="/", help="virtual host"),
        ConfigField("exchange", required=True, help="exchange to publish to (amq.default: the default exchange)"),
        ConfigField("routing_key", default="", help="routing key of every message"),
        ConfigField("username", required=True, help="RabbitMQ user"),
        ConfigField("password", required=True, secret=True, help="RabbitMQ password"),
        ConfigField(
            "protocol",
            choices=("http", "amqp"),
            default="http",
            help="http: the Management API publish; amqp: AMQP 0-9-1 with publisher confirms",
        ),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        target = config.get("url") or ""
        try:
            parts = urlsplit(target)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ConfigError({"provider_config.url": ["Not a valid URL."]}) from None
        if config.get("protocol") == "amqp" and (parts.scheme.lower() not in ("amqp", "amqps") or not parts.hostname):
            raise ConfigError({"provider_config.url": ["Must be an amqp:// or amqps:// URL with a host."]})
        return config  # the host itself is checked by the field's url_schemes rule

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config or {}
        if (config.get("protocol") or "http") == "amqp":
            return _send_amqp(destination, message, config)
        return _send_http(destination, message, config)


def _headers(destination, message: OutboundMessage) -> dict[str, str]:
    """The message's headers: the event and destination ids, and the event's own content type
    (``hookstream-content-type``) when the ``content_type`` property says something else."""
    headers = {"hookstream-event-id": message.event_id, "hookstream-destination-id": str(destination.pk)}
    original = (message.content_type or "").strip()
    if original and original != content_type(message):
        headers["hookstream-content-type"] = original
    return headers


def content_type(message: OutboundMessage) -> str:
    """The ``content_type`` property: ``application/json`` for a JSON body, as spec §4 shows
    (whatever the event's own label: ``application/vnd.api+json; charset=utf-8``, or none);
    otherwise the event's content type."""
    if message.payload is not None:
        return "application/json"
    return (message.content_type or "").strip() or "application/octet-stream"


def _timeout(destination) -> float:
    return max(destination.timeout_ms or 30000, 1) / 1000.0


def _send_http(destination, message: OutboundMessage, config: dict) -> Outcome:
    vhost = config.get("vhost") or "/"
    exchange = config.get("exchange") or ""
    url = (
        f"{config['url'].rstrip('/')}/api/exchanges/{quote(vhost, safe='')}/"
        f"{quote(exchange or 'amq.default', safe='')}/publish"
    )
    body = {
        "properties": {
            "content_type": content_type(message),
            "headers": _headers(destination, message),
        },
        "routing_key": config.get("routing_key") or "",
        "payload": message.body.decode("utf-8", errors="replace"),
        "payload_encoding": "string",
    }
    data = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": transport.basic_auth(config.get("username") or "", config.get("password") or ""),
    }
    base = {
        "request_url": url,
        "request_method": "POST",
        "request_headers": mask_headers(headers),
        "request_body_size": len(data),
    }
    with outbound.attempt_deadline(destination.timeout_ms):
        answer = transport.exchange(
            "POST", url, base=base, timeout_ms=destination.timeout_ms, body=data, headers=headers
        )
    if isinstance(answer, Outcome):
        return answer
    result = {
        **base,
        "response_status": answer.status,
        "response_headers": answer.headers,
        "response_body": answer.text[:4096],
    }
    status = answer.status
    if 200 <= status < 300:
        try:
            routed = json.loads(answer.text).get("routed")
        except (ValueError, AttributeError):
            return Outcome.retry("RabbitMQ answered without a JSON body", **result)
        if routed is True:
            return Outcome.success(**result)
        return Outcome.retry("unroutable: no queue is bound for this routing key", **result)
    reason = _reason(answer.text)
    if status in (401, 403):
        error = f"HTTP {status}: RabbitMQ refused the credentials"
    elif status == 404:
        error = f"HTTP 404: exchange {exchange!r} or vhost {vhost!r} not found"
    elif status == 400:
        error = "HTTP 400: RabbitMQ rejected the message"
    else:
        error = f"HTTP {status}"
    return Outcome.retry(error + (f": {reason}" if reason else ""), retry_after=answer.retry_after, **result)


def _reason(text: str) -> str:
    """The Management API's own words for a refusal (``{"error", "reason"}``), cut short."""
    try:
        reason = json.loads(text).get("reason")
    except (ValueError, AttributeError):
        return ""
    return str(reason)[:300] if reason else ""


def _connection_key(destination, config: dict) -> tuple:
    return (
        str(destination.pk),
        config.get("url"),
        config.get("vhost") or "/",
        config.get("username"),
        config.get("password"),
        # A connection opened while private networks were allowed is not kept once they are not.
        settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS,
    )


def _amqp_channel(destination, config: dict):
    import pika

    cache = getattr(_local, "connections", None)
    if cache is None:
        cache = _local.connections = {}
    key = _connection_key(destination, config)
    entry = cache.get(str(destination.pk))
    if entry is not None:
        old_key, connection, channel = entry
        if old_key == key and connection.is_open and channel.is_open:
            return channel
        _close(connection)
        cache.pop(str(destination.pk), None)
    timeout = _timeout(destination)
    connection = outbound.amqp_connect(
        config.get("url") or "",
        virtual_host=config.get("vhost") or "/",
        credentials=pika.PlainCredentials(config.get("username") or "", config.get("password") or ""),
        socket_timeout=timeout,
        blocked_connection_timeout=timeout,
        stack_timeout=timeout,
        connection_attempts=1,
        heartbeat=60,
    )
    channel = connection.channel()
    channel.confirm_delivery()
    cache[str(destination.pk)] = (key, connection, channel)
    return channel


def _close(connection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # noqa: BLE001 - closing a broken connection must not fail a send
        pass


def _cached(destination):
    return (getattr(_local, "connections", None) or {}).get(str(destination.pk))


def _drop(destination) -> None:
    cache = getattr(_local, "connections", None) or {}
    entry = cache.pop(str(destination.pk), None)
    if entry is not None:
        _close(entry[1])


def _send_amqp(destination, message: OutboundMessage, config: dict) -> Outcome:
    import pika
    from pika import exceptions as pika_exc

    exchange = config.get("exchange") or ""
    if exchange == "amq.default":
        exchange = ""
    base = {
        "request_url": f"{config.get('url', '').rstrip('/')}/{quote(config.get('vhost') or '/', safe='')}/{exchange}",
        "request_method": "PUBLISH",
        "request_headers": _headers(destination, message),
        "request_body_size": len(message.body),
    }

    def publish() -> None:
        channel = _amqp_channel(destination, config)
        channel.basic_publish(
            exchange=exchange,
            routing_key=config.get("routing_key") or "",
            body=message.body,
            properties=pika.BasicProperties(
                content_type=content_type(message),
                headers=_headers(destination, message),
                message_id=message.event_id,
                delivery_mode=2,
            ),
            mandatory=True,
        )

    reused = _cached(destination) is not None
    try:
        try:
            publish()
        except (pika_exc.AMQPConnectionError, pika_exc.ChannelWrongStateError, pika_exc.ConnectionWrongStateError):
            if not reused:
                raise
            # A kept connection may have gone stale while idle: reconnect once.
            _drop(destination)
            publish()
    except SSRFRefused as exc:
        return Outcome.permanent(f"SSRF guard: {exc}", **base)
    except ValueError as exc:
        _drop(destination)
        return Outcome.permanent(f"invalid URL: {exc}"[:500], **base)
    except pika_exc.UnroutableError:
        return Outcome.retry("unroutable: no queue is bound for this routing key", **base)
    except pika_exc.NackError:
        return Outcome.retry("RabbitMQ nacked the message", **base)
    except pika_exc.ProbableAuthenticationError as exc:
        _drop(destination)
        return Outcome.retry(f"authentication failed: {exc!r}"[:500], **base)
    except pika_exc.ChannelClosedByBroker as exc:
        _drop(destination)
        if exc.reply_code == 404:
            return Outcome.retry(f"exchange not found: {exc.reply_text}"[:500], **base)
        return Outcome.retry(f"channel closed by broker: {exc.reply_code} {exc.reply_text}"[:500], **base)
    except (pika_exc.AMQPError, OSError) as exc:
        _drop(destination)
        return Outcome.retry(f"connection error: {exc!r}"[:500], **base)
    return Outcome.success(**base)
