"""GCP Pub/Sub destinations."""

from destinations.providers.base import ConfigField, Provider, register


@register
class PubSubProvider(Provider):
    type = "pubsub"
    fields = (
        ConfigField("project_id", required=True),
        ConfigField("topic_id", required=True),
        ConfigField("service_account_json", secret=True, kind=(str, dict)),
        ConfigField("endpoint"),
    )
