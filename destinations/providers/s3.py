"""AWS S3 destinations."""

from destinations.providers.base import ConfigField, Provider, register


@register
class S3Provider(Provider):
    type = "s3"
    fields = (
        ConfigField("bucket", required=True),
        ConfigField("region", required=True),
        ConfigField("prefix", default=""),
        ConfigField("access_key_id", required=True),
        ConfigField("secret_access_key", required=True, secret=True),
        ConfigField("session_token", secret=True),
        ConfigField("format", choices=("json", "raw"), default="json"),
        ConfigField("endpoint_url"),
    )
