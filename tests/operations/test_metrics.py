from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import DeadLetter, DeliveryAttempt
from destinations.models import CircuitState
from tests.factories import make_delivery, make_destination, make_event


def _attempt(delivery, status, ms):
    return DeliveryAttempt.objects.create(
        organization=delivery.organization,
        delivery=delivery,
        event=delivery.event,
        destination=delivery.destination,
        attempt_number=1,
        status=status,
        duration_ms=ms,
    )


@pytest.fixture
def rows(alice, bob):
    dest = make_destination(alice.org)
    other = make_destination(alice.org)
    CircuitState.objects.filter(destination=other).update(state="open")
    ok = [make_delivery(make_event(alice.org), dest, status="succeeded") for _ in range(3)]
    dead = make_delivery(make_event(alice.org), dest, status="dead")
    make_delivery(make_event(alice.org), dest, status="pending", next_attempt_at=timezone.now() - timedelta(seconds=90))
    for delivery, ms in zip(ok, [10, 20, 30], strict=True):
        _attempt(delivery, "success", ms)
    _attempt(dead, "failed", 2000)
    DeadLetter.objects.create(
        organization=alice.org, delivery=dead, destination=dest, event=dead.event, reason="retries_exhausted"
    )
    # Yesterday and another tenant: not counted in alice's overview.
    make_event(alice.org, received_at=timezone.now() - timedelta(days=2))
    make_delivery(make_event(bob.org), make_destination(bob.org), status="dead")
    return dest


def test_overview_counts(alice, rows):
    body = alice.client().get("/v1/metrics/overview").json()
    assert body["events"] == 5
    assert body["deliveries"]["total"] == 5
    assert body["deliveries"]["succeeded"] == 3 and body["deliveries"]["dead"] == 1
    assert body["deliveries"]["pending"] == 1
    assert body["attempts"] == {"total": 4, "succeeded": 3, "failed": 1}
    assert body["success_rate"] == 0.75
    # From the rollups' latency histogram, interpolated within the bucket (10-25 ms, 1-2.5 s).
    assert body["latency_ms"] == {"p50": 25, "p95": 2200}
    assert body["dead_letters"] == 1
    assert body["open_circuits"] == 1


def test_overview_session_and_auth(alice, db):
    assert alice.session_client().get("/v1/metrics/overview").status_code == 200

    assert APIClient().get("/v1/metrics/overview").status_code in (401, 403)


def test_prometheus_off_without_token(client, db):
    with override_settings(HOOKSTREAM_METRICS_TOKEN=""):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer x").status_code == 404


@override_settings(HOOKSTREAM_METRICS_TOKEN="s3cret")
def test_prometheus_token(client, db):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
