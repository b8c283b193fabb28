"""The dashboard: today's traffic of the selected organization at a glance.

The numbers are ``deliveries.metrics.overview`` (the same as ``GET /v1/metrics/overview``);
the page adds the destinations whose circuit is not closed, those with dead letters waiting,
the latest failed attempts and the attempts per hour of the last 24 hours.
"""

from datetime import timedelta

from django.utils import timezone
from django.views.generic import TemplateView

from console.base import ConsoleMixin
from deliveries.metrics import overview
from deliveries.selectors import attempt_counts_by_hour, dead_letter_counts_by_destination, recent_failed_attempts
from destinations.selectors import circuits_not_closed

RECENT_FAILURES = 6
TOP_DEAD_LETTER_DESTINATIONS = 5


def hourly_attempts(*, organization, hours: int = 24) -> list[dict]:
    """Attempts per hour over the last ``hours`` hours, oldest first:
    ``[{"start", "ok", "failed", "ok_pct", "failed_pct"}]``.

    The percentages are of the busiest hour, for the bar heights.
    """
    now = timezone.now()
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    by_hour = attempt_counts_by_hour(organization=organization, since=first)
    peak = max((row["ok"] + row["failed"] for row in by_hour.values()), default=0) or 1
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
        return super().get_context_data(
            numbers=numbers,
            dead_letters=dead_letter_counts_by_destination(
                organization=self.organization, limit=TOP_DEAD_LETTER_DESTINATIONS
            ),
            success_pct=None if success_rate is None else round(success_rate * 100, 1),
            circuits=circuits_not_closed(organization=self.organization),
            failures=recent_failed_attempts(organization=self.organization, limit=RECENT_FAILURES),
            hours=hourly_attempts(organization=self.organization),
            **kwargs,
        )
