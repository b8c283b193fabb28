"""The delivery engine end to end: a real worker, Redis broker, PostgreSQL, real receivers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from deliveries.beat import beat_run, held_sweep
from deliveries.circuit import held_deliveries_release
from deliveries.dispatch import destinations_wake_on_commit
from deliveries.engine import process_delivery, provider_for
from deliveries.models import DeadLetter, Delivery, DeliveryAttempt
from deliveries.retry import retry_delay_seconds, retry_window_seconds
from deliveries.services import deliveries_cancel_for_destination
from destinations.models import CircuitState, Destination
from tests.deliveries.receiver import wait_until
from tests.factories import make_delivery, make_destination, make_event


def _status(delivery_id: str) -> str:
    return Delivery.objects.get(pk=delivery_id).status


@pytest.mark.django_db
def test_it_delivers_synchronously_through_process_delivery(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url)
    delivery = make_delivery(make_event(alice.org), destination)

    process_delivery(delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded", delivery.last_error
    assert delivery.attempt_count == 1 and delivery.completed_at is not None
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.id.startswith("da_") and len(attempt.id) == 35
    assert attempt.status == "success" and attempt.response_status == 200 and attempt.attempt_number == 1
    assert attempt.trigger_type == "initial" and attempt.duration_ms is not None
    assert len(receiver.requests) == 1


def test_it_delivers_through_a_real_worker(alice, receiver, worker):
    destination = make_destination(alice.org, url=receiver.url)
    delivery = make_delivery(make_event(alice.org), destination)

    destinations_wake_on_commit([delivery.destination_id])

    receiver.wait_for(1)
    wait_until(lambda: _status(delivery.id) == "succeeded", message="succeeded")


class _Policy:
    def __init__(self, kind, intervals, attempts=5, jitter=False):
        self.retry_backoff_type = kind
        self.retry_intervals = intervals
        self.retry_max_attempts = attempts
        self.retry_jitter = jitter


def test_it_computes_the_spec_retry_math():
    default = _Policy("exponential", [30, 300, 1800, 7200, 86400])
    assert [retry_delay_seconds(default, n) for n in range(1, 7)] == [30, 300, 1800, 7200, 86400, 86400]
    assert [retry_delay_seconds(_Policy("linear", [10, 99]), n) for n in (1, 2, 3)] == [10, 20, 30]
    assert [retry_delay_seconds(_Policy("fixed", [7, 99]), n) for n in (1, 2, 3)] == [7, 7, 7]
    assert retry_window_seconds(default) == 30 + 300 + 1800 + 7200 + 86400
    jittered = [retry_delay_seconds(_Policy("fixed", [100], jitter=True), 1) for _ in range(50)]
    assert all(80 <= d <= 120 for d in jittered) and len(set(jittered)) > 1


def test_it_follows_each_backoff_schedule_then_dead_letters(alice, receiver, worker):
    """Three destinations fail every request; their attempt times follow their schedules."""
    receiver.default = (500, {}, b"down")
    schedules = {
        "exponential": ([1, 2], [1, 2]),
        "linear": ([1], [1, 2]),
        "fixed": ([1.5], [1.5, 1.5]),
    }
    deliveries = {}
    for kind, (intervals, _expected) in schedules.items():
        destination = make_destination(
            alice.org,
            url=f"{receiver.url}/{kind}",
            retry_backoff_type=kind,
            retry_intervals=intervals,
            retry_max_attempts=2,
            circuit_breaker_enabled=False,
        )
        deliveries[kind] = make_delivery(make_event(alice.org), destination)
    destinations_wake_on_commit(d.destination_id for d in deliveries.values())

    for delivery in deliveries.values():
        wait_until(lambda d=delivery: _status(d.id) == "dead", timeout=15, message="dead letter")

    for kind, (_intervals, expected) in schedules.items():
        delivery = deliveries[kind]
        attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("attempt_number"))
        # retry_max_attempts=2: the first try and two retries, then the dead letter queue.
        assert [a.attempt_number for a in attempts] == [1, 2, 3]
        assert [a.trigger_type for a in attempts] == ["initial", "retry", "retry"]
        gaps = [(b.created_at - a.created_at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
        for gap, want in zip(gaps, expected, strict=True):
            assert want - 0.05 <= gap <= want + 0.9, (kind, gaps)
        # next_retry_at says when the next try was due; the last one went to the DLQ.
        assert attempts[0].next_retry_at is not None and attempts[-1].next_retry_at is None
        assert [a.is_dlq for a in attempts] == [False, False, True] and attempts[-1].dlq_at is not None
        dead_letter = DeadLetter.objects.get(delivery=delivery)
        assert dead_letter.reason == "retries_exhausted" and "HTTP 500" in dead_letter.last_error
        # The receiver saw the attempt numbers in order.
        seen = [r.headers["X-hookstream-Delivery-Attempt"] for r in receiver.requests if r.path.endswith(kind)]
        assert seen == ["1", "2", "3"]


@pytest.mark.django_db
def test_it_reads_the_retry_policy_at_the_moment_of_failure(alice, receiver):
    receiver.default = (500, {}, b"")
    destination = make_destination(alice.org, url=receiver.url, retry_max_attempts=3, retry_intervals=[60])
    delivery = make_delivery(make_event(alice.org), destination)
    process_delivery(delivery.id)
    assert _status(delivery.id) == "scheduled"

    # The policy changes while the delivery waits: the next failure uses the new one.
    Destination.objects.filter(pk=destination.pk).update(retry_max_attempts=1)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    process_delivery(delivery.id)
    assert _status(delivery.id) == "dead"


@pytest.mark.django_db
def test_it_honours_retry_after_up_to_the_cap(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url, retry_intervals=[1], circuit_breaker_enabled=False)
    receiver.script.append((429, {"Retry-After": "120"}, b""))
    delivery = make_delivery(make_event(alice.org), destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - DeliveryAttempt.objects.get(delivery=delivery).created_at).total_seconds()
    assert 119 <= wait <= 121

    with override_settings(HOOKSTREAM_RETRY_AFTER_CAP_SECONDS=5):
        receiver.script.append((503, {"Retry-After": "120"}, b""))
        other = make_delivery(make_event(alice.org), destination)
        process_delivery(other.id)
        other.refresh_from_db()
        attempt = DeliveryAttempt.objects.get(delivery=other)
        assert 4.9 <= (other.next_attempt_at - attempt.created_at).total_seconds() <= 5.1

    # Retry-After on other statuses is not a request to wait.
    receiver.script.append((500, {"Retry-After": "120"}, b""))
    third = make_delivery(make_event(alice.org), destination)
    process_delivery(third.id)
    third.refresh_from_db()
    assert (third.next_attempt_at - DeliveryAttempt.objects.get(delivery=third).created_at).total_seconds() < 2


@override_settings(HOOKSTREAM_MAX_BROKER_COUNTDOWN_SECONDS=0)
def test_it_parks_long_waits_in_the_database_and_beat_wakes_them(alice, receiver, worker):
    receiver.script.append((500, {}, b"once"))
    destination = make_destination(alice.org, url=receiver.url, retry_intervals=[1])
    delivery = make_delivery(make_event(alice.org), destination)
    destinations_wake_on_commit([delivery.destination_id])
    wait_until(lambda: _status(delivery.id) == "scheduled", message="scheduled")
    parked = Delivery.objects.get(pk=delivery.id)
    assert parked.woken_at is None  # no broker countdown: parked

    stop = threading.Event()

    def beat():
        try:
            while not stop.is_set():
                beat_run()
                stop.wait(0.2)
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        wait_until(lambda: _status(delivery.id) == "succeeded", timeout=10, message="woken by beat")
    finally:
        stop.set()
        thread.join()
    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 0.95


@pytest.mark.django_db
def test_it_holds_deliveries_of_a_paused_destination_until_resumed(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url, status="paused")
    delivery = make_delivery(make_event(alice.org), destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "held" and delivery.attempt_count == 0
    assert receiver.requests == [] and not DeliveryAttempt.objects.exists()

    Destination.objects.filter(pk=destination.pk).update(status="active")
    destination.refresh_from_db()
    assert held_deliveries_release(destination=destination) == 1
    process_delivery(delivery.id)
    assert _status(delivery.id) == "succeeded"


@pytest.mark.django_db
def test_it_cancels_deliveries_of_a_deleted_destination(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url)
    waiting = make_delivery(make_event(alice.org), destination)
    queued = make_delivery(make_event(alice.org), destination)
    assert deliveries_cancel_for_destination(destination=destination) == 2
    Destination.all_objects.filter(pk=destination.pk).update(deleted_at=timezone.now())

    process_delivery(queued.id)
    assert _status(waiting.id) == "cancelled" and _status(queued.id) == "cancelled"
    # A delivery that was in the queue when the destination went away is cancelled, not sent.
    late = make_delivery(make_event(alice.org), destination)
    process_delivery(late.id)
    assert _status(late.id) == "cancelled" and receiver.requests == []


@pytest.mark.django_db
def test_it_does_not_send_a_delivery_that_is_not_due(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url)
    later = make_delivery(
        make_event(alice.org), destination, status="scheduled", next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    process_delivery(later.id)
    process_delivery("dlv_doesnotexist")
    assert _status(later.id) == "scheduled" and receiver.requests == []


@pytest.mark.django_db
def test_it_dead_letters_held_deliveries_older_than_the_retry_window(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url, retry_max_attempts=2, retry_intervals=[10, 20])

    CircuitState.objects.filter(destination=destination).update(state="open", opened_at=timezone.now())
    old = make_delivery(
        make_event(alice.org), destination, status="held", created_at=timezone.now() - timedelta(seconds=31)
    )
    young = make_delivery(
        make_event(alice.org), destination, status="held", created_at=timezone.now() - timedelta(seconds=29)
    )

    earlier = DeliveryAttempt.objects.create(
        organization=alice.org, delivery=old, event=old.event, destination=destination, attempt_number=1
    )

    held_sweep()

    assert _status(old.id) == "dead" and _status(young.id) == "held"
    assert DeadLetter.objects.get(delivery=old).reason == "circuit_open"
    earlier.refresh_from_db()
    assert earlier.is_dlq and earlier.dlq_at is not None


@pytest.mark.django_db
def test_it_dead_letters_a_delivery_that_cannot_be_prepared(alice, receiver):
    # A secret encrypted with another key cannot be decrypted: no retry can help.
    destination = make_destination(
        alice.org, url=receiver.url, provider_config={"auth_type": "bearer", "token": "enc:v1:not-a-token"}
    )
    delivery = make_delivery(make_event(alice.org), destination)

    process_delivery(delivery.id)

    assert _status(delivery.id) == "dead" and receiver.requests == []
    dead_letter = DeadLetter.objects.get(delivery=delivery)
    assert dead_letter.reason == "permanent_failure" and "cannot prepare" in dead_letter.last_error


@pytest.mark.django_db
def test_it_reuses_the_provider_until_the_destination_changes(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url)
    first, _ = provider_for(destination)
    assert provider_for(Destination.objects.get(pk=destination.pk))[0] is first

    # A queryset update does not move updated_at; the changed URL still gives a new instance.
    Destination.objects.filter(pk=destination.pk).update(url=receiver.url + "/v2")
    changed, plain = provider_for(Destination.objects.get(pk=destination.pk))
    assert changed is not first and plain.url.endswith("/v2")
