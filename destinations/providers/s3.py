"""AWS S3 destinations (spec §4).

PutObject at ``{prefix}{YYYY}/{MM}/{DD}/{event_id}.json`` (the event's ``received_at`` in
UTC). ``json`` writes ``{"event_id","source_id","method","headers","body","received_at"}``
(``body`` parsed as JSON when it is JSON, else the text); ``raw`` writes the body's bytes.
The object's metadata carries the event id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from destinations.providers import aws
from destinations.providers.aws import HTTP_SCHEMES
from destinations.providers.base import ConfigField, OutboundMessage, Outcome, Provider, register


@register
class S3Provider(Provider):
    type = "s3"
    label = "AWS S3"
    description = "Archive each event as an object in an AWS S3 bucket."
    fields = (
        ConfigField("bucket", required=True, help="bucket name"),
        ConfigField("region", required=True, help="AWS region, e.g. eu-west-1"),
        ConfigField("prefix", default="", help="key prefix: objects go to {prefix}YYYY/MM/DD/{event_id}.json"),
        ConfigField("access_key_id", required=True, help="AWS access key id"),
        ConfigField("secret_access_key", required=True, secret=True, help="AWS secret access key"),
        ConfigField("session_token", secret=True, help="AWS session token, for temporary credentials"),
        ConfigField(
            "format",
            choices=("json", "raw"),
            default="json",
            help="json: the event as a JSON document; raw: the body bytes",
        ),
        ConfigField(
            "endpoint_url",
            url_schemes=HTTP_SCHEMES,
            help="another S3 endpoint (LocalStack, moto, MinIO); path-style addressing",
        ),
    )

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config or {}
        bucket = config.get("bucket", "")
        key = object_key(config.get("prefix") or "", message)
        if (config.get("format") or "json") == "raw":
            body = message.body or b""
            content_type = message.content_type or "application/octet-stream"
        else:
            body = json_document(message)
            content_type = "application/json"
        base = {"request_url": f"s3://{bucket}/{key}", "request_method": "PutObject", "request_body_size": len(body)}
        try:
            response = aws.call(
                "s3",
                config,
                destination.timeout_ms,
                "put_object",
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata={
                    "hookstream-event-id": message.event_id,
                    "hookstream-destination-id": str(message.destination_id),
                    "hookstream-attempt": str(message.attempt_number),
                },
            )
        except Exception as exc:  # noqa: BLE001 - classified below
            return aws.classify(exc, base, destination.timeout_ms)
        return Outcome.success(
            response_status=aws.status_of(response),
            response_body=aws.summary(response, "ETag", "VersionId"),
            **base,
        )


def object_key(prefix: str, message: OutboundMessage) -> str:
    received = message.received_at or datetime.now(UTC)
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    day = received.astimezone(UTC)
    return f"{prefix}{day:%Y}/{day:%m}/{day:%d}/{message.event_id}.json"


def json_document(message: OutboundMessage) -> bytes:
    raw = message.body or b""
    body = message.payload
    if body is None:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", errors="replace")
    received = message.received_at
    document = {
        "event_id": message.event_id,
        "source_id": message.source_id,
        "method": message.method,
        "headers": message.headers or {},
        "body": body,
        "received_at": received.astimezone(UTC).isoformat().replace("+00:00", "Z") if received else None,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode()
