"""Kafka destinations through the Confluent REST Proxy v3 (spec §4).

``POST {records_url}`` — ``{rest_url}/kafka/v3/clusters/{cluster_id}/topics/{topic}/records``
for a bare ``rest_url``; see :func:`records_url` for ``/v3`` (a self-managed REST Proxy) and
for the URL derived from ``bootstrap_servers`` — with ``Content-Type: application/json``,
Basic auth ``api_key:api_secret`` (when set) and::

    {"value": {"type": "JSON", "data": <payload>},
     "headers": [{"name": "hookstream-event-id", "value": <base64>},
                 {"name": "hookstream-destination-id", "value": <base64>}]}

A body that is not JSON is sent as ``{"type": "BINARY", "data": <base64 of the body>}`` so
no byte is lost. Success = HTTP 200 **and** the body's ``error_code == 200``.

Failures: every answer that is not a success — any other HTTP status (401 bad credentials,
404 unknown cluster or topic, 429 whatever its body, 5xx…) or a 200 whose ``error_code`` is
not 200 (40002, 50002…) — is retried by the destination's policy, then dead-lettered, as for
HTTP (spec §3): the credentials, the topic or the proxy may be fixed within the retry window.
Time-outs and connection errors are retried too. Permanent: only what hookstream refuses to
send (the egress policy, a configuration that names no endpoint).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlsplit

from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register
from destinations.providers.transport import basic_auth, exchange
from hookstream import outbound
from hookstream.headers import mask_headers


@register
class KafkaProvider(Provider):
    type = "kafka"
    label = "Kafka"
    description = "Produce each event to a Kafka topic through the Confluent REST Proxy v3."
    fields = (
        ConfigField(
            "rest_url",
            url_schemes=("http", "https"),
            help="REST Proxy v3: a base (…/kafka/v3 is added), or a URL ending in /v3 for a self-managed proxy",
        ),
        ConfigField(
            "bootstrap_servers",
            hosts=True,
            help="without rest_url, records go to https://<first host>:443/kafka/v3/…",
        ),
        ConfigField("cluster_id", required=True, help="Kafka cluster id (lkc-… on Confluent Cloud)"),
        ConfigField("topic", required=True, help="topic name"),
        ConfigField("api_key", help="Basic auth user (a Confluent API key)"),
        ConfigField("api_secret", secret=True, help="Basic auth password (the API secret)"),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        if not config.get("rest_url") and not config.get("bootstrap_servers"):
            raise ConfigError({"provider_config.rest_url": ["rest_url (or bootstrap_servers) is required."]})
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config or {}
        url = records_url(config)
        if not url:
            return Outcome.permanent("bootstrap_servers names no host; set rest_url (REST Proxy v3)")
        body = json.dumps(record(destination, message), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        send_headers = dict(headers)
        if config.get("api_key"):
            send_headers["Authorization"] = basic_auth(config["api_key"], config.get("api_secret") or "")
        base = {
            "request_url": url,
            "request_method": "POST",
            "request_headers": mask_headers(send_headers),
            "request_body_size": len(body),
        }
        with outbound.attempt_deadline(destination.timeout_ms):
            answer = exchange(
                "POST", url, base=base, timeout_ms=destination.timeout_ms, body=body, headers=send_headers
            )
        if isinstance(answer, Outcome):
            return answer
        status = answer.status
        text = answer.text
        result = {
            **base,
            "response_status": status,
            "response_headers": answer.headers,
            "response_body": text[:4096],
        }
        data = _json(text)
        detail = data.get("message") if isinstance(data, dict) else None
        suffix = f": {detail}" if detail else ""
        if status == 200:
            if not isinstance(data, dict):
                return Outcome.retry("HTTP 200 without a JSON body", **result)
            code = data.get("error_code")
            if code == 200:
                return Outcome.success(**result)
            return Outcome.retry(f"REST Proxy error_code {code}{suffix}", **result)
        error = f"HTTP {status}{suffix}"
        if status == 404:
            hint = ""
            if _guessed_kafka_path(config):
                hint = " (a self-managed REST Proxy serves v3 at /v3: end rest_url with /v3)"
            error = f"HTTP 404: unknown cluster or topic {config['topic']!r}{suffix}{hint}"
        elif status in (401, 403):
            error = f"HTTP {status}: the REST Proxy refused the credentials{suffix}"
        return Outcome.retry(error, retry_after=answer.retry_after, **result)


def records_url(config: dict) -> str:
    """The v3 produce URL of a destination's topic (README "Kafka endpoint").

    ``rest_url`` decides by its path, in this order:

    - already a ``…/clusters/…/records`` URL: used as it is;
    - ends in ``/v3`` — a self-managed REST Proxy (``http://proxy:8082/v3``) or Confluent's
      ``…/kafka/v3``: ``/clusters/{cluster_id}/topics/{topic}/records`` is appended;
    - ends in ``/kafka``: ``/v3/clusters/…`` is appended;
    - anything else (a bare base such as ``https://pkc-….confluent.cloud:443``, or a prefix):
      ``/kafka/v3/clusters/…`` is appended, as spec §4 writes it and as Confluent Cloud and
      Confluent Server serve it.

    Without ``rest_url`` it is derived from the first of ``bootstrap_servers``
    (``SASL_SSL://pkc-….confluent.cloud:9092``) as
    ``https://<host>:443/kafka/v3/clusters/<cluster_id>/topics/<topic>/records``: the REST
    endpoint Confluent Cloud serves beside its bootstrap server. The bootstrap port (the Kafka
    protocol's) is never the REST port. "" when bootstrap_servers names no host.
    """
    tail = f"/clusters/{quote(config['cluster_id'], safe='')}/topics/{quote(config['topic'], safe='')}/records"
    rest = (config.get("rest_url") or "").strip().rstrip("/")
    if rest:
        path = urlsplit(rest).path
        if "/clusters/" in path and path.endswith("/records"):
            return rest
        if path.endswith("/v3"):
            return rest + tail
        if path.endswith("/kafka"):
            return f"{rest}/v3{tail}"
        return f"{rest}/kafka/v3{tail}"
    host = bootstrap_host(config.get("bootstrap_servers") or "")
    return f"https://{host}:443/kafka/v3{tail}" if host else ""


def _guessed_kafka_path(config: dict) -> bool:
    """Whether /kafka/v3 was added to a bare rest_url of a host that is not Confluent Cloud's."""
    rest = (config.get("rest_url") or "").strip().rstrip("/")
    if not rest:
        return False
    parts = urlsplit(rest)
    return not parts.path.endswith(("/v3", "/kafka", "/records")) and not (parts.hostname or "").endswith(
        ".confluent.cloud"
    )


def bootstrap_host(bootstrap_servers: str) -> str:
    """The host of the first ``bootstrap_servers`` entry (IPv6 in brackets), or ""."""
    first = bootstrap_servers.split(",")[0].strip()
    host = first.split("://", 1)[-1].rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.strip("/")


def record(destination, message: OutboundMessage) -> dict:
    """The v3 produce request body for one event."""
    if message.payload is not None:
        value = {"type": "JSON", "data": message.payload}
    else:
        value = {"type": "BINARY", "data": base64.b64encode(message.body).decode()}
    return {
        "value": value,
        "headers": [
            {"name": "hookstream-event-id", "value": _b64(message.event_id)},
            {"name": "hookstream-destination-id", "value": _b64(str(destination.pk))},
        ],
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _json(text: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None
