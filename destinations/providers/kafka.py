"""Kafka destinations through the Confluent REST Proxy v3 (spec §4).

``POST {rest_url}/kafka/v3/clusters/{cluster_id}/topics/{topic}/records`` with
``Content-Type: application/json``, Basic auth ``api_key:api_secret`` (when set) and::

    {"value": {"type": "JSON", "data": <payload>},
     "headers": [{"name": "hookstream-event-id", "value": <base64>},
                 {"name": "hookstream-destination-id", "value": <base64>}]}

A body that is not JSON is sent as ``{"type": "BINARY", "data": <base64 of the body>}`` so
no byte is lost. Success = HTTP 200 **and** the body's ``error_code == 200``.

Failures: 400/401/403/404 (unknown cluster or topic)/413/415/422 → permanent; 408, 429
(whatever the body, even HTML) and 5xx → retryable; a 200 whose ``error_code`` is not 200 is
retryable when the code is a throttle (429) or a server error (5xx, including five-digit
Confluent codes such as 50002), permanent otherwise. Time-outs and connection errors are
retryable. Without ``rest_url`` the REST endpoint is derived from ``bootstrap_servers``
(``records_url``).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register
from destinations.providers.transport import basic_auth, exchange
from hookstream import outbound
from hookstream.headers import mask_headers

PERMANENT_STATUSES = {400, 401, 403, 404, 405, 409, 413, 415, 422}


@register
class KafkaProvider(Provider):
    type = "kafka"
    label = "Kafka"
    description = "Produce each event to a Kafka topic through the Confluent REST Proxy v3."
    fields = (
        ConfigField("rest_url", url_schemes=("http", "https")),
        ConfigField("bootstrap_servers", hosts=True),
        ConfigField("cluster_id", required=True),
        ConfigField("topic", required=True),
        ConfigField("api_key"),
        ConfigField("api_secret", secret=True),
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
            error = f"REST Proxy error_code {code}{suffix}"
            if _retryable_code(code):
                return Outcome.retry(error, **result)
            return Outcome.permanent(error, **result)
        retry_after = answer.retry_after
        if status == 404:
            return Outcome.permanent(f"HTTP 404: unknown cluster or topic {config['topic']!r}{suffix}", **result)
        if status in PERMANENT_STATUSES:
            return Outcome.permanent(f"HTTP {status}{suffix}", **result)
        return Outcome.retry(f"HTTP {status}{suffix}", retry_after=retry_after, **result)


def records_url(config: dict) -> str:
    """The v3 produce URL of a destination's topic.

    - ``rest_url`` as a base (``https://pkc-….confluent.cloud:443``): ``/kafka/v3/clusters/…``
      is appended, as Confluent Cloud serves it;
    - ``rest_url`` ending in ``/v3`` (a self-managed REST Proxy, ``http://proxy:8082/v3``) or
      ``/kafka/v3`` (Confluent Cloud): ``/clusters/{cluster_id}/topics/{topic}/records``;
    - ``rest_url`` that is already a ``…/clusters/…/records`` URL: used as it is;
    - no ``rest_url``: derived from the first of ``bootstrap_servers``
      (``SASL_SSL://pkc-….confluent.cloud:9092``) as
      ``https://<host>:443/kafka/v3/clusters/<cluster_id>/topics/<topic>/records``, the REST
      endpoint Confluent Cloud serves beside its bootstrap server.
    """
    tail = f"/clusters/{quote(config['cluster_id'], safe='')}/topics/{quote(config['topic'], safe='')}/records"
    rest = (config.get("rest_url") or "").strip().rstrip("/")
    if rest:
        if "/clusters/" in rest and rest.endswith("/records"):
            return rest
        if rest.endswith("/v3"):
            return rest + tail
        return f"{rest}/kafka/v3{tail}"
    first = (config.get("bootstrap_servers") or "").split(",")[0].strip()
    host = first.split("://", 1)[-1].rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.strip("/")
    return f"https://{host}:443/kafka/v3{tail}" if host else ""


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


def _retryable_code(code) -> bool:
    if not isinstance(code, int) or isinstance(code, bool):
        return True
    while code >= 1000:  # Confluent's five-digit codes: 50002 → 500, 40403 → 404
        code //= 100
    return code == 429 or code == 408 or code >= 500
