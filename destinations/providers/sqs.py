"""AWS SQS destinations."""

from destinations.providers.base import ConfigField, Provider, register


@register
class SqsProvider(Provider):
    type = "sqs"
    fields = (
        ConfigField("queue_url", required=True),
        ConfigField("region", required=True),
        ConfigField("access_key_id", required=True),
        ConfigField("secret_access_key", required=True, secret=True),
        ConfigField("session_token", secret=True),
        ConfigField("message_group_id"),
        ConfigField("endpoint_url"),
        ConfigField("max_message_bytes", kind=int, default=1024 * 1024),
    )
