"""Destination providers: one module per type, each registering a ``Provider`` subclass.

Adding a type means adding a module here and importing it below; nothing else changes.
"""

from destinations.providers.base import REGISTRY, ConfigError, ConfigField, OutboundMessage, Outcome, Provider

# Import for registration.
from destinations.providers import (  # noqa: E402,F401  isort: skip
    eventbridge,
    http,
    kafka,
    pubsub,
    rabbitmq,
    s3,
    sqs,
    websocket,
)


def get_provider(type_name: str) -> type[Provider]:
    return REGISTRY[type_name]


__all__ = ["REGISTRY", "ConfigError", "ConfigField", "Outcome", "OutboundMessage", "Provider", "get_provider"]
