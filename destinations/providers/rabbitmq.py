"""RabbitMQ destinations (HTTP Management API, or AMQP with publisher confirms)."""

from destinations.providers.base import ConfigField, Provider, register


@register
class RabbitMqProvider(Provider):
    type = "rabbitmq"
    fields = (
        ConfigField("url", required=True),
        ConfigField("vhost", default="/"),
        ConfigField("exchange", required=True),
        ConfigField("routing_key", default=""),
        ConfigField("username", required=True),
        ConfigField("password", required=True, secret=True),
        ConfigField("protocol", choices=("http", "amqp"), default="http"),
    )
