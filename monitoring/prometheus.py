"""Prometheus ``/metrics``: counters and histograms observed where things happen, summed
over every process, plus a few gauges read cheaply at scrape time.

Counters and histograms are incremented by the signal receivers (``monitoring.receivers``)
and the request middleware, in whichever process did the work (a Celery worker thread, a
gunicorn worker). prometheus_client's multiprocess mode keeps each process's values in files
under ``PROMETHEUS_MULTIPROC_DIR`` and a scrape sums them, so a counter is the total of the
whole deployment, only grows (a process that exits leaves its files), and ``rate()`` works.

The gauges read only small tables or bounded index ranges: circuits (one row per
destination), unresolved issues (a partial index), the due backlog (counted up to
``BACKLOG_CAP`` on the partial index of due deliveries) and its oldest due time.

``/metrics`` answers 404 while ``HOOKSTREAM_METRICS_TOKEN`` is empty and 403 unless the
request carries ``Authorization: Bearer <HOOKSTREAM_METRICS_TOKEN>``.
"""

from __future__ import annotations

import hmac
import os
import time

from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from deliveries.models import Delivery, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue
from monitoring.models import Issue, IssueStatus

# Attempt durations, seconds: from a fast local answer to a long time-out.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BACKLOG_CAP = 10000

EVENTS_RECEIVED = Counter("hookstream_events_received", "Events stored (ingest or topic publish).", ["via"])
DELIVERY_ATTEMPTS = Counter(
    "hookstream_delivery_attempts",
    "Delivery attempts, by destination type and outcome (success, retry: failed and retry "
    "scheduled, dead: failed and dead-lettered, failed: failed otherwise).",
    ["destination_type", "outcome"],
)
ATTEMPT_DURATION = Histogram(
    "hookstream_delivery_attempt_duration_seconds",
    "Duration of delivery attempts.",
    ["destination_type"],
    buckets=DURATION_BUCKETS,
)
DEAD_LETTERS = Counter("hookstream_dead_letters", "Deliveries moved to the dead letter queue.", ["reason"])
CIRCUIT_TRANSITIONS = Counter(
    "hookstream_circuit_transitions", "Circuit breaker state changes.", ["from_state", "to_state"]
)
ISSUES_OPENED = Counter("hookstream_issues_opened", "Issues opened.", ["error_type"])
NOTIFICATIONS = Counter("hookstream_notifications", "Alert notifications sent or failed.", ["channel_type", "outcome"])
HTTP_REQUESTS = Counter(
    "hookstream_http_requests", "HTTP requests served, by route name, method and status.", ["view", "method", "status"]
)
HTTP_DURATION = Histogram(
    "hookstream_http_request_duration_seconds",
    "Time to answer HTTP requests, by route name.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class DatabaseGauges:
    """Gauges read at scrape time from small tables and bounded index ranges."""

    def collect(self):
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
        due = Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED], next_attempt_at__lte=now
        )
        yield GaugeMetricFamily(
            "hookstream_backlog",
            f"Deliveries due and not yet attempted (counted up to {BACKLOG_CAP}).",
            value=due.order_by()[:BACKLOG_CAP].count(),
        )
        oldest = due.aggregate(at=Min("next_attempt_at"))["at"]
        yield GaugeMetricFamily(
            "hookstream_queue_lag_seconds",
            "Age of the oldest due delivery not yet attempted (0 when none is due).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "hookstream_open_issues",
            "Unresolved issues (open or acknowledged).",
            value=Issue.objects.exclude(status=IssueStatus.RESOLVED).count(),
        )


def registry() -> CollectorRegistry:
    """Every process's counters (multiprocess mode) or this one's, plus the gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        scrape = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(scrape)
    else:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Default())
    scrape.register(DatabaseGauges())
    return scrape


class _Default:
    def collect(self):
        return REGISTRY.collect()


def prometheus_view(request):
    token = settings.HOOKSTREAM_METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off (HOOKSTREAM_METRICS_TOKEN is empty).")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return HttpResponse("Forbidden: a valid Authorization: Bearer token is required.\n", status=403)
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


# --- observations ------------------------------------------------------------------------------


def attempt_observe(*, destination_type: str, outcome: str, duration_ms: int | None) -> None:
    DELIVERY_ATTEMPTS.labels(destination_type, outcome).inc()
    if duration_ms is not None:
        ATTEMPT_DURATION.labels(destination_type).observe(duration_ms / 1000)


class MetricsMiddleware:
    """Counts every request and times it, labelled with the route's name (bounded labels)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else "") or "unmatched"
        HTTP_REQUESTS.labels(
            view, request.method if request.method in _METHODS else "other", str(response.status_code)
        ).inc()
        HTTP_DURATION.labels(view).observe(time.monotonic() - started)
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
