from django.apps import AppConfig


class StreamConfig(AppConfig):
    """The live stream ``/v1/ws``: its consumer runs in the ASGI process; its receivers run
    wherever deliveries are made, turning the engine's signals into frames on the bus."""

    name = "stream"
    verbose_name = "Live stream"

    def ready(self) -> None:
        from stream import receivers  # noqa: F401, PLC0415  (connects the receivers once apps are loaded)
