"""The dashboard: today's traffic of the selected organization at a glance.

The numbers are ``hookstream.metrics.overview`` (the same as ``GET /v1/metrics/overview``);
the page adds the destinations whose circuit is not closed, those with dead letters waiting,
the latest failed attempts and
the attempts per hour of the last 24 hours.
"""

from datetime import timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.views.generic import TemplateView

from console.base import ConsoleMixin
from deliveries.models import AttemptStatus, DeadLetter, DeliveryAttempt
from destinations.models import CircuitState, CircuitStateValue
from hookstream.metrics import overview

RECENT_FAILURES = 6
TOP_DEAD_LETTER_DESTINATIONS = 5


def hourly_attempts(*, organization, hours: int = 24) -> list[dict]:
    """Attempts per hour over the last ``hours`` hours, oldest first:
    ``[{"start", "ok", "failed", "ok_pct", "failed_pct"}]``.

    The percentages are of the busiest hour, for the bar heights.
    """
    now = timezone.now()
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = (
        DeliveryAttempt.objects.filter(organization=organization, created_at__gte=first)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(
            ok=Count("pk", filter=Q(status=AttemptStatus.SUCCESS)),
            failed=Count("pk", filter=Q(status=AttemptStatus.FAILED)),
        )
        .order_by("hour")
    )
    by_hour = {row["hour"]: row for row in rows}
    peak = max((row["ok"] + row["failed"] for row in rows), default=0) or 1
    result = []
    for n in range(hours):
        start = first + timedelta(hours=n)
        row = by_hour.get(start, {"ok": 0, "failed": 0})
        result.append(
            {
                "start": start,
                "ok": row["ok"],
                "failed": row["failed"],
                "ok_pct": round(100 * row["ok"] / peak, 1),
                "failed_pct": round(100 * row["failed"] / peak, 1),
            }
        )
    return result


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
        dead_letters = (
            DeadLetter.objects.filter(organization=self.organization, destination__deleted_at__isnull=True)
            .values("destination_id", "destination__name")
            .annotate(n=Count("pk"))
            .order_by("-n", "destination__name")[:TOP_DEAD_LETTER_DESTINATIONS]
        )
        return super().get_context_data(
            numbers=numbers,
            dead_letters=dead_letters,
            success_pct=None if success_rate is None else round(success_rate * 100, 1),
            circuits=circuits,
            failures=failures,
            hours=hourly_attempts(organization=self.organization),
            **kwargs,
        )
