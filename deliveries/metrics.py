"""Metrics: ``GET /v1/metrics/overview`` (per organization, today) and Prometheus ``/metrics``.

``/metrics`` is for operators and covers every organization. It answers 404 while
``HOOKSTREAM_METRICS_TOKEN`` is empty and 403 unless the request carries
``Authorization: Bearer <HOOKSTREAM_METRICS_TOKEN>``. Its values are computed from the
database rows at scrape time, so any process (web or worker) reports the same numbers.
"""

import hmac
from datetime import datetime, time

from django.conf import settings
from django.db.models import Count, Min, Q
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from deliveries.models import AttemptStatus, DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue, Destination
from intake.models import Event

# Upper bounds, in seconds, of the attempt duration histogram.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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


def _counts(name: str, fields) -> serializers.Serializer:
    return type(name, (serializers.Serializer,), {f: serializers.IntegerField() for f in fields})()


class OverviewSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Start of today (server time zone).")
    events = serializers.IntegerField()
    deliveries = _counts("OverviewDeliveries", ["total", *DeliveryStatus.values])
    attempts = _counts("OverviewAttempts", ["total", "succeeded", "failed"])
    success_rate = serializers.FloatField(allow_null=True, help_text="Succeeded / finished attempts today.")
    latency_ms = type(
        "OverviewLatency",
        (serializers.Serializer,),
        {"p50": serializers.IntegerField(allow_null=True), "p95": serializers.IntegerField(allow_null=True)},
    )()
    dead_letters = serializers.IntegerField()
    open_circuits = serializers.IntegerField()


class MetricsOverviewView(APIView):
    """``GET /v1/metrics/overview``: today's numbers for the caller's organization."""

    @extend_schema(summary="Today's delivery metrics", responses={200: OverviewSerializer})
    def get(self, request):
        return Response(overview(organization=request._request.organization))


class DatabaseCollector:
    """Reads the numbers from the database at each scrape."""

    def collect(self):
        deliveries = GaugeMetricFamily(
            "hookstream_deliveries", "Deliveries by destination type and status (outcome).", labels=["type", "status"]
        )
        for row in Delivery.objects.values("destination__type", "status").annotate(n=Count("pk")).order_by():
            deliveries.add_metric([row["destination__type"], row["status"]], row["n"])
        yield deliveries

        bounds_ms = [int(b * 1000) for b in DURATION_BUCKETS]
        timed = DeliveryAttempt.objects.filter(duration_ms__isnull=False)
        agg = timed.aggregate(
            total=Count("pk"),
            **{f"le_{ms}": Count("pk", filter=Q(duration_ms__lte=ms)) for ms in bounds_ms},
        )
        total_ms = sum(timed.values_list("duration_ms", flat=True).iterator()) if agg["total"] else 0
        buckets = [(str(b), agg[f"le_{ms}"]) for b, ms in zip(DURATION_BUCKETS, bounds_ms, strict=True)]
        buckets.append(("+Inf", agg["total"]))
        histogram = HistogramMetricFamily(
            "hookstream_attempt_duration_seconds", "Duration of delivery attempts (from stored attempts)."
        )
        histogram.add_metric([], buckets, sum_value=total_ms / 1000)
        yield histogram

        yield GaugeMetricFamily("hookstream_dead_letters", "Dead letters waiting.", value=DeadLetter.objects.count())

        circuits = GaugeMetricFamily("hookstream_circuits", "Destinations by circuit breaker state.", labels=["state"])
        counts = dict(
            CircuitState.objects.filter(destination__deleted_at__isnull=True)
            .values_list("state")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for state in CircuitStateValue.values:
            circuits.add_metric([state], counts.get(state, 0))
        yield circuits

        now = timezone.now()
        oldest = Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED], next_attempt_at__lte=now
        ).aggregate(at=Min("next_attempt_at"))["at"]
        yield GaugeMetricFamily(
            "hookstream_queue_lag_seconds",
            "Age of the oldest due delivery not yet attempted (0 when none is due).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "hookstream_destinations", "Destinations (not deleted).", value=Destination.objects.count()
        )


def prometheus_view(request):
    token = settings.HOOKSTREAM_METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off (HOOKSTREAM_METRICS_TOKEN is empty).")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return HttpResponse("Forbidden: a valid Authorization: Bearer token is required.\n", status=403)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
