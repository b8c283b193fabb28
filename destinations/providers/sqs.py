"""AWS SQS destinations (spec §4).

SendMessage with the event body (or the route's transformed payload) as the message body and
``hookstream-event-id`` / ``hookstream-destination-id`` / ``attempt`` message attributes.
A FIFO queue (URL ending ``.fifo``) gets ``MessageGroupId`` (``message_group_id`` or the event
id) and ``MessageDeduplicationId`` = event id. A body over ``max_message_bytes`` is a
permanent failure.
"""

from __future__ import annotations

from destinations.providers import aws
from destinations.providers.aws import HTTP_SCHEMES
from destinations.providers.base import ConfigError, ConfigField, OutboundMessage, Outcome, Provider, register


@register
class SqsProvider(Provider):
    type = "sqs"
    label = "AWS SQS"
    description = "Send each event as a message to an AWS SQS queue."
    fields = (
        ConfigField(
            "queue_url",
            required=True,
            url_schemes=HTTP_SCHEMES,
            help="the queue URL; one ending in .fifo gets MessageGroupId and MessageDeduplicationId",
        ),
        ConfigField("region", required=True, help="AWS region, e.g. eu-west-1"),
        ConfigField("access_key_id", required=True, help="AWS access key id"),
        ConfigField("secret_access_key", required=True, secret=True, help="AWS secret access key"),
        ConfigField("session_token", secret=True, help="AWS session token, for temporary credentials"),
        ConfigField("message_group_id", help="FIFO queues: MessageGroupId (default: the event id)"),
        ConfigField(
            "endpoint_url", url_schemes=HTTP_SCHEMES, help="another SQS endpoint (LocalStack, moto, a VPC endpoint)"
        ),
        ConfigField(
            "max_message_bytes",
            kind=int,
            default=1024 * 1024,
            help="a larger body fails permanently, without being sent",
        ),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        if config.get("max_message_bytes", 1) < 1:
            raise ConfigError({"provider_config.max_message_bytes": ["Must be at least 1."]})
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:
        config = destination.provider_config or {}
        queue_url = config.get("queue_url", "")
        body = message.body or b""
        base = {"request_url": queue_url, "request_method": "SendMessage", "request_body_size": len(body)}
        limit = int(config.get("max_message_bytes") or 1024 * 1024)
        if len(body) > limit:
            return Outcome.permanent(f"message of {len(body)} bytes exceeds max_message_bytes ({limit})", **base)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Outcome.permanent("SQS message bodies must be UTF-8 text; the event body is binary", **base)
        params = {
            "QueueUrl": queue_url,
            "MessageBody": text,
            "MessageAttributes": {
                "hookstream-event-id": {"DataType": "String", "StringValue": message.event_id},
                "hookstream-destination-id": {"DataType": "String", "StringValue": str(message.destination_id)},
                "attempt": {"DataType": "Number", "StringValue": str(message.attempt_number)},
            },
        }
        if queue_url.endswith(".fifo"):
            params["MessageGroupId"] = config.get("message_group_id") or message.event_id
            params["MessageDeduplicationId"] = message.event_id
        try:
            response = aws.call("sqs", config, destination.timeout_ms, "send_message", **params)
        except Exception as exc:  # noqa: BLE001 - classified below
            return aws.classify(exc, base, destination.timeout_ms)
        return Outcome.success(
            response_status=aws.status_of(response),
            response_body=aws.summary(response, "MessageId", "SequenceNumber"),
            **base,
        )
