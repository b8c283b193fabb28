"""The dashboard: the selected organization's traffic over a range (``?range=24h|7d|30d``).

The figures and the attempts chart come from the monitoring rollups
(``monitoring.selectors.range_figures``, ``monitoring.rollups.delivery_totals``), so the page
costs the same at any table size; the page adds the destinations whose circuit is not closed,
those with dead letters waiting, the latest failed attempts and the deliveries still owed.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.views.generic import TemplateView

from console.base import ConsoleMixin
from deliveries.selectors import dead_letter_counts_by_destination, recent_failed_attempts
from destinations.selectors import circuits_not_closed
from monitoring import rollups, selectors

RECENT_FAILURES = 6
TOP_DEAD_LETTER_DESTINATIONS = 5


@dataclass(frozen=True)
class Range:
    key: str
    label: str
    bar: timedelta  # one bar of the chart
    bars: int
    granularity: str  # of the rollups read for it
    bar_label: str
    tick_every: int  # a tick under every n-th bar
    tick_format: str  # Django date format of a tick

    def start(self, now: datetime) -> datetime:
        """The first bar's start: bars end with the one holding ``now``, on whole bars (UTC)."""
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        current = midnight + (now - midnight) // self.bar * self.bar
        return current - self.bar * (self.bars - 1)


RANGES = {
    r.key: r
    for r in (
        Range("24h", "last 24 hours", timedelta(hours=1), 24, "hour", "hour", 3, "H"),
        Range("7d", "last 7 days", timedelta(hours=6), 28, "hour", "6 hours", 4, "D j"),
        Range("30d", "last 30 days", timedelta(days=1), 30, "day", "day", 5, "M j"),
    )
}
DEFAULT_RANGE = "24h"


def attempt_bars(*, organization, chosen: Range, now: datetime | None = None) -> list[dict]:
    """Attempts per bar over the range, oldest first:
    ``[{"start", "ok", "failed", "ok_pct", "failed_pct"}]``.

    The percentages are of the busiest bar, for the bar heights.
    """
    now = now or timezone.now()
    first = chosen.start(now)
    counts = [{"ok": 0, "failed": 0} for _ in range(chosen.bars)]
    totals = rollups.delivery_totals(
        organization=organization, after=first, before=now, granularity=chosen.granularity, by=("bucket",)
    )
    for (bucket,), values in totals.items():
        index = (bucket - first) // chosen.bar
        if 0 <= index < chosen.bars:
            counts[index]["ok"] += values["success_count"]
            counts[index]["failed"] += values["failure_count"]
    peak = max((row["ok"] + row["failed"] for row in counts), default=0) or 1
    return [
        {
            "start": first + chosen.bar * n,
            "ok": row["ok"],
            "failed": row["failed"],
            "ok_pct": round(100 * row["ok"] / peak, 1),
            "failed_pct": round(100 * row["failed"] / peak, 1),
        }
        for n, row in enumerate(counts)
    ]


class DashboardView(ConsoleMixin, TemplateView):
    template_name = "console/dashboard.html"

    def get_context_data(self, **kwargs):
        chosen = RANGES.get(self.request.GET.get("range", ""), RANGES[DEFAULT_RANGE])
        now = timezone.now()
        after = chosen.start(now)
        return super().get_context_data(
            ranges=RANGES.values(),
            chosen=chosen,
            after=after,
            numbers=selectors.range_figures(organization=self.organization, after=after, before=now),
            waiting=selectors.unfinished_delivery_counts(organization=self.organization, since=after),
            open_circuits=selectors.circuits_open_count(organization=self.organization),
            dead_letters=dead_letter_counts_by_destination(
                organization=self.organization, limit=TOP_DEAD_LETTER_DESTINATIONS
            ),
            circuits=circuits_not_closed(organization=self.organization),
            failures=recent_failed_attempts(organization=self.organization, limit=RECENT_FAILURES),
            bars=attempt_bars(organization=self.organization, chosen=chosen, now=now),
            **kwargs,
        )
