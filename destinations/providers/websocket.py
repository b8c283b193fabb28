"""WebSocket destinations."""

import re

from destinations.providers.base import ConfigError, ConfigField, Provider, register

CHANNEL_RE = re.compile(r"^[a-z0-9._-]+$")


@register
class WebSocketProvider(Provider):
    type = "websocket"
    fields = (
        ConfigField("url"),
        ConfigField("channel_name", required=True),
        ConfigField("headers", kind=dict),
        ConfigField("require_ack", kind=bool, default=False),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        errors = {}
        target = config.get("url") or url
        if not target:
            errors["provider_config.url"] = ["A ws:// or wss:// url is required."]
        elif not target.startswith(("ws://", "wss://")):
            errors["provider_config.url"] = ["Must start with ws:// or wss://."]
        if not CHANNEL_RE.match(config.get("channel_name", "")):
            errors["provider_config.channel_name"] = ["Must match ^[a-z0-9._-]+$."]
        if errors:
            raise ConfigError(errors)
        return config
