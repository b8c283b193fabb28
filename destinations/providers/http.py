"""HTTP/webhook destinations."""

from destinations.providers.base import ConfigError, ConfigField, Provider, register


@register
class HttpProvider(Provider):
    type = "http"
    uses_url = True
    fields = (
        ConfigField("auth_type", choices=("none", "bearer", "basic", "api_key"), default="none"),
        ConfigField("token", secret=True, help="bearer token"),
        ConfigField("username"),
        ConfigField("password", secret=True),
        ConfigField("api_key_header", default="X-API-Key"),
        ConfigField("api_key", secret=True),
        # PagerDuty Events v2 puts its integration key in the body (templates_catalog "pagerduty").
        ConfigField("routing_key", secret=True),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        errors = {}
        auth = config.get("auth_type", "none")
        needs = {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("api_key",)}.get(auth, ())
        for name in needs:
            if not config.get(name):
                errors[f"provider_config.{name}"] = [f"Required when auth_type is {auth!r}."]
        if errors:
            raise ConfigError(errors)
        return config
