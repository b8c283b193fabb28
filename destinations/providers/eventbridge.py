"""AWS EventBridge destinations (spec §4).

PutEvents with one entry: ``Source``, ``DetailType``, ``Detail`` = the body as a JSON string
(a body that is not a JSON object is wrapped as ``{"body": …}``) and ``EventBusName`` =
``event_bus_arn``. HTTP 200 with ``FailedEntryCount > 0`` is a failure, retried by the
destination's policy whatever its ``ErrorCode``, as a missing bus or a refused permission is.
An entry over ``max_entry_bytes`` is a permanent failure (it is never sent).
"""

from __future__ import annotations

import json
from typing import Any

from destinations.providers import aws
from destinations.providers.aws import HTTP_SCHEMES
from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register


@register
class EventBridgeProvider(Provider):
    type = "eventbridge"
    label = "AWS EventBridge"
    description = "Put each event on an AWS EventBridge bus."
    fields = (
        ConfigField("event_bus_arn", default="default", help="EventBusName: a bus name or ARN"),
        ConfigField("region", required=True, help="AWS region, e.g. eu-west-1"),
        ConfigField("source", default="hookstream", help="the entry's Source"),
        ConfigField("detail_type", default="hookstream.event", help="the entry's DetailType"),
        ConfigField("access_key_id", required=True, help="AWS access key id"),
        ConfigField("secret_access_key", required=True, secret=True, help="AWS secret access key"),
        ConfigField("session_token", secret=True, help="AWS session token, for temporary credentials"),
        ConfigField("endpoint_url", url_schemes=HTTP_SCHEMES, help="another EventBridge endpoint (LocalStack, moto)"),
        ConfigField(
            "max_entry_bytes",
            kind=int,
            default=1024 * 1024,
            help="a larger entry fails permanently, without being sent",
        ),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        if config.get("max_entry_bytes", 1) < 1:
            raise ConfigError({"provider_config.max_entry_bytes": ["Must be at least 1."]})
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config or {}
        bus = config.get("event_bus_arn") or "default"
        entry: dict[str, Any] = {
            "Source": config.get("source") or "hookstream",
            "DetailType": config.get("detail_type") or "hookstream.event",
            "Detail": detail(message),
            "EventBusName": bus,
            "Resources": [],
        }
        size = entry_size(entry)
        base = {"request_url": bus, "request_method": "PutEvents", "request_body_size": size}
        limit = int(config.get("max_entry_bytes") or 1024 * 1024)
        if size > limit:
            return Outcome.permanent(f"entry of {size} bytes exceeds max_entry_bytes ({limit})", **base)
        try:
            response = aws.call("events", config, destination.timeout_ms, "put_events", Entries=[entry])
        except Exception as exc:  # noqa: BLE001 - classified below
            return aws.classify(exc, base, destination.timeout_ms)
        return classify_put_events(response, base)


def detail(message: OutboundMessage) -> str:
    """``Detail``: the body's JSON object as a string; anything else wrapped as {"body": …}."""
    payload = message.payload
    if payload is None:
        try:
            payload = json.loads(message.body or b"")
        except (ValueError, UnicodeDecodeError):
            payload = None
    if not isinstance(payload, dict):
        if payload is not None:
            value = payload
        else:
            value = (message.body or b"").decode("utf-8", errors="replace")
        payload = {"body": value}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def entry_size(entry: dict) -> int:
    """The entry size as EventBridge counts it (UTF-8 bytes of its string fields)."""
    size = 0
    for name in ("Source", "DetailType", "Detail", "EventBusName"):
        size += len(str(entry.get(name) or "").encode())
    for resource in entry.get("Resources") or []:
        size += len(resource.encode())
    return size


def classify_put_events(response: dict, base: dict) -> Outcome:
    """A PutEvents answer: FailedEntryCount > 0 is a failure, classified by its ErrorCode."""
    status = aws.status_of(response)
    entries = response.get("Entries") or []
    first = entries[0] if entries else {}
    fields = {**base, "response_status": status}
    if int(response.get("FailedEntryCount") or 0) > 0 or first.get("ErrorCode"):
        code = str(first.get("ErrorCode") or "UnknownError")
        text = str(first.get("ErrorMessage") or "")
        error = f"PutEvents entry failed: {code}" + (f": {text}" if text else "")
        fields["response_body"] = f"FailedEntryCount={response.get('FailedEntryCount')} ErrorCode={code}"
        return Outcome.retry(error, **fields)
    return Outcome.success(response_body=f"EventId={first.get('EventId', '')}", **fields)
