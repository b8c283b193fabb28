from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Operators' tools: health checks, issues, alert rules and notification channels,
    metrics over time, Prometheus counters and structured logs.

    It sits above ``deliveries`` in the layering: the engine announces what happens through
    the signals of ``deliveries.signals`` (and ``intake.signals``), and this app listens.
    """

    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from monitoring import receivers  # noqa: F401, PLC0415  (connects the receivers once apps are loaded)
