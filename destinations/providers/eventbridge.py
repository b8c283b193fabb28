"""AWS EventBridge destinations."""

from destinations.providers.base import ConfigField, Provider, register


@register
class EventBridgeProvider(Provider):
    type = "eventbridge"
    fields = (
        ConfigField("event_bus_arn", default="default"),
        ConfigField("region", required=True),
        ConfigField("source", default="hookstream"),
        ConfigField("detail_type", default="hookstream.event"),
        ConfigField("access_key_id", required=True),
        ConfigField("secret_access_key", required=True, secret=True),
        ConfigField("session_token", secret=True),
        ConfigField("endpoint_url"),
        ConfigField("max_entry_bytes", kind=int, default=1024 * 1024),
    )
