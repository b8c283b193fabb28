from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "intake"

    def ready(self) -> None:
        from intake import receivers  # noqa: F401, PLC0415  (connects the receivers once apps are loaded)
