"""Reads of the monitoring app that views, the console and alerts share."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from deliveries.models import DeadLetter, Delivery, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue, Destination, DestinationStatus
from intake.models import Source, SourceStatus
from monitoring import rollups
from monitoring.models import Issue, IssueStatus

ISSUE_STATUS_FILTERS = ("open", "acknowledged", "resolved", "all")


def issues_for_organization(*, organization, status: str = "open", destination_id: str | None = None) -> QuerySet:
    rows = Issue.objects.filter(organization=organization).select_related("destination")
    if status != "all":
        rows = rows.filter(status=status)
    if destination_id:
        rows = rows.filter(destination_id=destination_id)
    return rows


def issue_summary(*, organization) -> dict:
    counts = dict(
        Issue.objects.filter(organization=organization).values_list("status").annotate(n=Count("pk")).order_by()
    )
    return {status: counts.get(status, 0) for status in IssueStatus.values}


DLQ_COUNT_CAP = 10_000
# Unfinished deliveries are counted on the partial index of unfinished deliveries: its size is
# the backlog, not the table.
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD)


def start_of_today() -> datetime:
    now = timezone.localtime()
    return timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)


def _percent(part: int, whole: int) -> float | None:
    return round(part / whole * 100, 2) if whole else None


def range_figures(*, organization, after: datetime, before: datetime) -> dict:
    """Events, attempts, success rate, latency and dead letters over a range, from the
    rollups and the raw rows beat has not rolled yet (``monitoring.rollups``): constant-time
    in the size of the tables. Latency percentiles are read from the rollups' histogram,
    interpolated within a bucket."""
    totals = rollups.delivery_totals(organization=organization, after=after, before=before, by=()).get(())
    totals = totals or {"attempt_count": 0, "success_count": 0, "failure_count": 0, "dead_letter_count": 0}
    histogram = totals.get("latency_histogram") or []
    succeeded, failed = totals["success_count"], totals["failure_count"]
    return {
        "events": rollups.volume_total(organization=organization, after=after, before=before),
        "attempts": {"total": totals["attempt_count"], "succeeded": succeeded, "failed": failed},
        "success_pct": _percent(succeeded, succeeded + failed),
        "latency_ms": {
            "p50": rollups.histogram_quantile(histogram, 0.50),
            "p95": rollups.histogram_quantile(histogram, 0.95),
        },
        "dead_letters": totals["dead_letter_count"],
    }


def destination_figures(*, organization, destination_ids, after: datetime, before: datetime) -> dict[str, dict]:
    """``{destination_id: {attempts, success_pct, p95_ms, dead_letters}}`` over a range, for
    the given destinations (a page of a list): one grouped read of the rollups and of the
    raw rows after them."""
    totals = rollups.delivery_totals(
        organization=organization, after=after, before=before, by=("destination",), destination_ids=destination_ids
    )
    figures = {}
    for (destination_id,), values in totals.items():
        succeeded, failed = values["success_count"], values["failure_count"]
        figures[destination_id] = {
            "attempts": values["attempt_count"],
            "success_pct": _percent(succeeded, succeeded + failed),
            "p95_ms": rollups.histogram_quantile(values["latency_histogram"], 0.95),
            "dead_letters": values["dead_letter_count"],
        }
    return figures


def unfinished_delivery_counts(*, organization, since: datetime) -> dict[str, int]:
    """Deliveries created since ``since`` and still owed: ``{status: n}`` for each unfinished
    status."""
    counts = dict(
        Delivery.objects.filter(organization=organization, status__in=UNFINISHED, created_at__gte=since)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {status: counts.get(status, 0) for status in UNFINISHED}


def dead_letters_waiting(*, organization) -> int:
    """Dead letters waiting, counted up to ``DLQ_COUNT_CAP``."""
    return DeadLetter.objects.filter(organization=organization).order_by()[:DLQ_COUNT_CAP].count()


def overview(*, organization) -> dict:
    """Today's numbers (this project's fields) and the hosted product's field names.

    Everything is read from the rollups and small tables, so the cost does not grow with the
    traffic: attempts, latency (from the rollups' histogram), events and dead letters since
    midnight; deliveries by status are today's successful attempts (``succeeded``), dead
    letters (``dead``) and the unfinished deliveries created today; ``dlq_count`` is counted up
    to ``DLQ_COUNT_CAP``.
    """
    now = timezone.now()
    since = start_of_today()
    today = range_figures(organization=organization, after=since, before=now)
    week_start = since - timedelta(days=since.weekday())
    attempts = today["attempts"]
    deliveries = {
        "succeeded": attempts["succeeded"],
        "dead": today["dead_letters"],
        **unfinished_delivery_counts(organization=organization, since=since),
    }
    finished = attempts["succeeded"] + attempts["failed"]
    return {
        "since": since,
        "events": today["events"],
        "deliveries": {"total": sum(deliveries.values()), **deliveries},
        "attempts": attempts,
        # Share of today's finished attempts that succeeded (null when there were none).
        "success_rate": round(attempts["succeeded"] / finished, 4) if finished else None,
        "latency_ms": today["latency_ms"],
        "dead_letters": today["dead_letters"],
        "open_circuits": circuits_open_count(organization=organization),
        "events_today": today["events"],
        "events_this_week": rollups.volume_total(organization=organization, after=week_start, before=now),
        "active_sources": Source.objects.filter(organization=organization, status=SourceStatus.ACTIVE).count(),
        "deliveries_today": attempts["total"],
        "success_today": attempts["succeeded"],
        "failed_today": attempts["failed"],
        "success_rate_today": today["success_pct"],
        "dlq_count": dead_letters_waiting(organization=organization),
        "active_destinations": Destination.objects.filter(
            organization=organization, status=DestinationStatus.ACTIVE
        ).count(),
        "open_issues": Issue.objects.filter(organization=organization).exclude(status=IssueStatus.RESOLVED).count(),
    }


def circuits_open_count(*, organization) -> int:
    return CircuitState.objects.filter(
        destination__organization=organization,
        destination__deleted_at__isnull=True,
        state__in=[CircuitStateValue.OPEN, CircuitStateValue.HALF_OPEN],
    ).count()
