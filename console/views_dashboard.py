"""The dashboard: today's traffic of the selected organization at a glance.

The numbers are ``hookstream.metrics.overview`` (the same as ``GET /v1/metrics/overview``);
the page adds the destinations whose circuit is not closed, the latest failed attempts and
today's attempts per hour.
"""

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.views.generic import TemplateView

from console.base import ConsoleMixin
from deliveries.models import AttemptStatus, DeliveryAttempt
from destinations.models import CircuitState, CircuitStateValue
from hookstream.metrics import overview

RECENT_FAILURES = 8


def hourly_attempts(*, organization, since) -> list[dict]:
    """Attempts per hour since ``since``: ``[{"hour", "ok", "failed", "ok_pct", "failed_pct"}]``.

    The percentages are of the busiest hour, for the bar heights.
    """
    rows = (
        DeliveryAttempt.objects.filter(organization=organization, created_at__gte=since)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(
            ok=Count("pk", filter=Q(status=AttemptStatus.SUCCESS)),
            failed=Count("pk", filter=Q(status=AttemptStatus.FAILED)),
        )
        .order_by("hour")
    )
    by_hour = {row["hour"].hour: row for row in rows}
    peak = max((row["ok"] + row["failed"] for row in rows), default=0) or 1
    hours = []
    for hour in range(24):
        row = by_hour.get(hour, {"ok": 0, "failed": 0})
        hours.append(
            {
                "hour": hour,
                "ok": row["ok"],
                "failed": row["failed"],
                "ok_pct": round(100 * row["ok"] / peak, 1),
                "failed_pct": round(100 * row["failed"] / peak, 1),
            }
        )
    return hours


class DashboardView(ConsoleMixin, TemplateView):
    template_name = "console/dashboard.html"

    def get_context_data(self, **kwargs):
        numbers = overview(organization=self.organization)
        success_rate = numbers["success_rate"]
        circuits = (
            CircuitState.objects.select_related("destination")
            .filter(
                destination__organization=self.organization,
                destination__deleted_at__isnull=True,
                state__in=[CircuitStateValue.OPEN, CircuitStateValue.HALF_OPEN],
            )
            .order_by("-opened_at")
        )
        failures = (
            DeliveryAttempt.objects.select_related("destination")
            .filter(organization=self.organization, status=AttemptStatus.FAILED, destination__deleted_at__isnull=True)
            .order_by("-created_at", "-id")[:RECENT_FAILURES]
        )
        return super().get_context_data(
            numbers=numbers,
            success_pct=None if success_rate is None else round(success_rate * 100, 1),
            circuits=circuits,
            failures=failures,
            hours=hourly_attempts(organization=self.organization, since=numbers["since"]),
            **kwargs,
        )
