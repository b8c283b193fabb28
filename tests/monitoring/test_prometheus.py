"""Prometheus /metrics: counters observed in the processes that do the work, summed by the
scrape (multiprocess mode), that only grow; cheap gauges."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from deliveries.engine import process_delivery
from deliveries.models import Delivery
from destinations.models import CircuitState
from tests.factories import make_delivery, make_destination, make_event
from tests.support import require_postgres

ROOT = Path(__file__).resolve().parents[2]

# A separate worker process: attempts the deliveries named on its command line.
WORKER = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "hookstream.settings"
django.setup()
from deliveries.engine import process_delivery
for delivery_id in sys.argv[1:]:
    process_delivery(delivery_id)
"""


def _scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _attempts(samples, outcome: str) -> float:
    key = ("hookstream_delivery_attempts_total", (("destination_type", "http"), ("outcome", outcome)))
    return samples.get(key, 0.0)


def _run_worker(delivery_ids: list[str]) -> None:
    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env = {**os.environ, "HOOKSTREAM_TESTING": "true", "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, *delivery_ids], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.django_db(transaction=True)
@override_settings(HOOKSTREAM_METRICS_TOKEN="s3cret")
def test_it_sums_counters_across_worker_processes_and_they_only_grow(client, alice, receiver):
    require_postgres()
    receiver.script.extend([(500, {}, b"boom")] * 2)  # two failures, then successes
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_enabled=False)
    deliveries = [make_delivery(make_event(alice.org), destination).id for _ in range(7)]
    before = _scrape(client)
    started = time.monotonic()

    _run_worker(deliveries[:2])  # two processes, one after the other: two pids, two files
    _run_worker(deliveries[2:5])
    first = _scrape(client)
    _run_worker(deliveries[5:])
    second = _scrape(client)
    elapsed = time.monotonic() - started

    assert _attempts(first, "retry") - _attempts(before, "retry") == 2
    assert _attempts(first, "success") - _attempts(before, "success") == 3
    assert _attempts(second, "success") - _attempts(first, "success") == 2
    for name_labels, value in first.items():
        if name_labels[0].endswith(("_total", "_count", "_bucket", "_sum")):
            assert second.get(name_labels, 0) >= value, name_labels  # counters never go down
    # What rate() computes: the increase over the interval.
    rate = (
        sum(_attempts(second, o) for o in ("success", "retry"))
        - sum(_attempts(before, o) for o in ("success", "retry"))
    ) / elapsed
    assert rate > 0
    duration_count = ("hookstream_delivery_attempt_duration_seconds_count", (("destination_type", "http"),))
    assert second[duration_count] - before.get(duration_count, 0) == 7
    assert Delivery.objects.filter(status="succeeded").count() == 5


@pytest.mark.django_db(transaction=True)
@override_settings(HOOKSTREAM_METRICS_TOKEN="s3cret")
def test_it_counts_events_dead_letters_circuits_and_requests(
    client, alice, receiver, django_capture_on_commit_callbacks
):
    receiver.default = (500, {}, b"boom")
    source = alice.client().post("/v1/sources", {"name": "Shop"}, format="json").json()
    destination = make_destination(
        alice.org, url=receiver.url, retry_max_attempts=1, retry_intervals=[0], circuit_breaker_threshold=2
    )
    before = _scrape(client)

    assert client.post(f"/v1/ingest/{source['id']}", b"{}", content_type="application/json").status_code == 200
    delivery = make_delivery(make_event(alice.org), destination)
    process_delivery(delivery.id)
    Delivery.objects.filter(pk=delivery.id).update(next_attempt_at=delivery.created_at)
    process_delivery(delivery.id)
    after = _scrape(client)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("hookstream_events_received_total", via="ingest") == 1
    assert grew("hookstream_dead_letters_total", reason="retries_exhausted") == 1
    assert grew("hookstream_delivery_attempts_total", destination_type="http", outcome="dead") == 1
    assert grew("hookstream_circuit_transitions_total", from_state="closed", to_state="open") == 1
    assert grew("hookstream_http_requests_total", view="metrics-prometheus", method="GET", status="200") == 1
    assert after[("hookstream_circuits", (("state", "open"),))] >= 1
    assert CircuitState.objects.get(destination=destination).state == "open"


@override_settings(HOOKSTREAM_METRICS_TOKEN="s3cret")
def test_it_reads_cheap_gauges(client, alice):
    destination = make_destination(alice.org)
    make_delivery(make_event(alice.org), destination, next_attempt_at=timezone.now() - timedelta(seconds=90))
    samples = _scrape(client)

    assert samples[("hookstream_backlog", ())] == 1
    assert 85 < samples[("hookstream_queue_lag_seconds", ())] < 200
    assert ("hookstream_open_issues", ()) in samples


def test_it_keeps_the_metrics_token(client, db):
    with override_settings(HOOKSTREAM_METRICS_TOKEN=""):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer x").status_code == 404
    with override_settings(HOOKSTREAM_METRICS_TOKEN="s3cret"):
        assert client.get("/metrics").status_code == 403
