"""Destination providers: one module per type, each registering a ``Provider`` subclass.

Adding a type means adding a module here and importing it below; nothing else changes
(README, "Adding a destination type").
"""

from destinations.providers.base import (
    REGISTRY,
    ConfigError,
    ConfigField,
    OutboundMessage,
    Outcome,
    Provider,
    register,
    type_choices,
    unregister,
)

# Import for registration, in the order the console and the API schema list the types.
from destinations.providers import (  # noqa: E402,F401  isort: skip
    http,
    sqs,
    s3,
    eventbridge,
    pubsub,
    kafka,
    rabbitmq,
    websocket,
)


def get_provider(type_name: str) -> type[Provider]:
    return REGISTRY[type_name]


__all__ = [
    "REGISTRY",
    "ConfigError",
    "ConfigField",
    "Outcome",
    "OutboundMessage",
    "Provider",
    "get_provider",
    "register",
    "type_choices",
    "unregister",
]
