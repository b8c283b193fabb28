"""Kafka destinations through the Confluent REST Proxy v3."""

from destinations.providers.base import ConfigError, ConfigField, Provider, register


@register
class KafkaProvider(Provider):
    type = "kafka"
    fields = (
        ConfigField("rest_url"),
        ConfigField("bootstrap_servers"),
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
