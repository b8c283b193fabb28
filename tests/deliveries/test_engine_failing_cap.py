"""The failing-destination cap applies to destinations that fail slowly (time-outs, stalls),
not to ones that answer an error at once: those cost the workers nothing and must keep
their retry schedule."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db.models import F
from django.test import override_settings

from deliveries import engine
from deliveries.dispatch import destinations_wake_on_commit
from deliveries.models import Delivery, DeliveryAttempt
from destinations.models import CircuitState
from tests.deliveries.receiver import Receiver, wait_until
from tests.factories import make_delivery, make_destination, make_event


def _send(org, destination, count):
    deliveries = [make_delivery(make_event(org), destination) for _ in range(count)]
    destinations_wake_on_commit(d.destination_id for d in deliveries)
    return deliveries


def _attempted(deliveries) -> bool:
    return DeliveryAttempt.objects.filter(delivery_id__in=[d.id for d in deliveries]).count() >= len(deliveries)


def test_it_marks_a_destination_that_times_out_as_failing_slowly(alice, db):
    hanging = Receiver()
    try:
        hanging.delay = 1.0
        destination = make_destination(alice.org, url=hanging.url, timeout_ms=300, circuit_breaker_enabled=False)
        delivery = make_delivery(make_event(alice.org), destination)
        cache.delete(engine._slow_key(destination.pk))

        engine.process_delivery(delivery.id)

        delivery.refresh_from_db()
        assert delivery.status == "scheduled"
        assert CircuitState.objects.get(destination=destination).failure_count == 1
        assert engine.failing_slowly(destination, 1)
    finally:
        hanging.close()


def test_it_clears_the_mark_when_the_destination_answers_again(alice, receiver, db):
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_enabled=False)
    CircuitState.objects.update_or_create(destination=destination, defaults={"failure_count": 3})
    engine._mark_slow(destination)
    assert engine.failing_slowly(destination, 3)

    engine.process_delivery(make_delivery(make_event(alice.org), destination).id)

    assert CircuitState.objects.get(destination=destination).failure_count == 0
    assert not engine.failing_slowly(destination, 3)


def test_it_does_not_mark_a_destination_that_fails_fast(alice, receiver, db):
    receiver.default = (500, {}, b"no")
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_enabled=False)
    cache.delete(engine._slow_key(destination.pk))

    engine.process_delivery(make_delivery(make_event(alice.org), destination).id)

    assert CircuitState.objects.get(destination=destination).failure_count == 1
    assert not engine.failing_slowly(destination, 1)


@override_settings(HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT=1)
def test_it_does_not_cap_a_destination_that_fails_fast(alice, receiver, worker):
    # Every attempt answers 500 after 0.2 s: failing, but not slow (threshold: 1 s).
    receiver.default = (500, {}, b"no")
    receiver.delay = 0.2
    destination = make_destination(alice.org, url=receiver.url, retry_intervals=[3600], circuit_breaker_enabled=False)
    first = _send(alice.org, destination, 1)
    wait_until(lambda: _attempted(first), timeout=10, message="first failure recorded")

    deliveries = _send(alice.org, destination, 8)
    wait_until(lambda: _attempted(deliveries), timeout=10, interval=0.02, message="all attempted")

    # Four worker threads sent them side by side: nothing was put back behind a cap of one.
    assert receiver.max_active > 1
    assert not Delivery.objects.filter(pk__in=[d.id for d in deliveries], status="pending").exists()


@override_settings(HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT=1)
def test_it_spreads_the_backlog_of_a_slow_destination_over_time_outs(alice, worker):
    hanging = Receiver()
    try:
        hanging.delay = 2.0
        destination = make_destination(
            alice.org, url=hanging.url, timeout_ms=400, retry_intervals=[3600], circuit_breaker_enabled=False
        )
        first = _send(alice.org, destination, 1)
        wait_until(lambda: _attempted(first), timeout=10, message="first time-out recorded")

        sent = len(hanging.requests)
        started = time.monotonic()
        backlog = _send(alice.org, destination, 30)
        wait_until(
            lambda: (
                # Put back: due later than the moment it was last written (new ones are due at once).
                Delivery.objects.filter(
                    pk__in=[d.id for d in backlog], status="pending", next_attempt_at__gt=F("updated_at")
                ).count()
                >= 25
            ),
            timeout=10,
            message="backlog put back",
        )
        # Put back for about one time-out per cap of the pending backlog (30 × 0.4 s × 0.5–1),
        # not all of it within one time-out: re-checking it costs few claims.
        waits = [
            (d.next_attempt_at - d.updated_at).total_seconds()
            for d in Delivery.objects.filter(pk__in=[d.id for d in backlog], status="pending")
        ]
        assert max(waits) > 2.0, waits
        # One request in flight at a time, each ending with its 0.4 s time-out: the backlog
        # did not go out side by side (a slow machine takes longer to put it back, hence the
        # bound by elapsed time).
        elapsed = time.monotonic() - started
        assert len(hanging.requests) - sent <= 2 + elapsed / 0.4, (len(hanging.requests), sent, elapsed)
    finally:
        hanging.close()
