"""Today's delivery figures of an organization (``overview``), read from the tables.

Served by ``monitoring`` (``GET /v1/metrics/overview``, the console dashboard); Prometheus
counters are observed where things happen (``monitoring.prometheus``), not computed here.
"""

from datetime import datetime, time

from django.db.models import Count, Q
from django.utils import timezone

from deliveries.models import AttemptStatus, DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue
from intake.models import Event


def _percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))  # ceil
    return sorted_values[int(rank) - 1]


def _start_of_today() -> datetime:
    now = timezone.localtime()
    return timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)


def overview(*, organization) -> dict:
    """Counts since midnight (server time zone) for one organization."""
    since = _start_of_today()
    deliveries = Delivery.objects.filter(organization=organization, created_at__gte=since)
    by_status = {s: 0 for s in DeliveryStatus.values}
    for row in deliveries.values("status").annotate(n=Count("pk")):
        by_status[row["status"]] = row["n"]
    attempts = DeliveryAttempt.objects.filter(organization=organization, created_at__gte=since)
    finished = attempts.aggregate(
        ok=Count("pk", filter=Q(status=AttemptStatus.SUCCESS)),
        failed=Count("pk", filter=Q(status=AttemptStatus.FAILED)),
    )
    done = finished["ok"] + finished["failed"]
    durations = sorted(attempts.filter(duration_ms__isnull=False).values_list("duration_ms", flat=True))
    return {
        "since": since,
        "events": Event.objects.filter(organization=organization, received_at__gte=since).count(),
        "deliveries": {"total": sum(by_status.values()), **by_status},
        "attempts": {"total": attempts.count(), "succeeded": finished["ok"], "failed": finished["failed"]},
        # Share of today's finished attempts that succeeded (null when there were none).
        "success_rate": round(finished["ok"] / done, 4) if done else None,
        "latency_ms": {"p50": _percentile(durations, 0.50), "p95": _percentile(durations, 0.95)},
        "dead_letters": DeadLetter.objects.filter(organization=organization, created_at__gte=since).count(),
        "open_circuits": CircuitState.objects.filter(
            destination__organization=organization,
            destination__deleted_at__isnull=True,
            state__in=[CircuitStateValue.OPEN, CircuitStateValue.HALF_OPEN],
        ).count(),
    }
