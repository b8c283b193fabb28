"""Per-destination limits: max_concurrency, rate_limit_per_second, and the cap on a failing
destination that keeps a hanging target from starving the healthy ones."""

from __future__ import annotations

import time

from django.test import override_settings

from deliveries.dispatch import destinations_wake_on_commit
from deliveries.models import Delivery, DeliveryAttempt
from tests.deliveries.receiver import Receiver, wait_until
from tests.factories import make_delivery, make_destination, make_event


def _send(org, destination, count):
    deliveries = [make_delivery(make_event(org), destination) for _ in range(count)]
    destinations_wake_on_commit(d.destination_id for d in deliveries)
    return deliveries


def _all(deliveries, status):
    return Delivery.objects.filter(pk__in=[d.id for d in deliveries], status=status).count() == len(deliveries)


def _max_overlap(attempts) -> int:
    edges = []
    for attempt in attempts:
        end = attempt.created_at.timestamp()
        edges += [(end - attempt.duration_ms / 1000.0, 1), (end, -1)]
    current = peak = 0
    for _at, step in sorted(edges):
        current += step
        peak = max(peak, current)
    return peak


def test_it_keeps_at_most_max_concurrency_attempts_in_flight(alice, receiver, worker):
    receiver.default = (200, {"__delay__": 0.2}, b"ok")
    destination = make_destination(alice.org, url=receiver.url, max_concurrency=1)
    deliveries = _send(alice.org, destination, 4)

    wait_until(lambda: _all(deliveries, "succeeded"), timeout=10, message="delivered")
    assert receiver.max_active == 1 and len(receiver.requests) == 4
    # Waiting for the cap is not an attempt.
    assert DeliveryAttempt.objects.filter(destination=destination).count() == 4


def test_it_honours_the_rate_limit_per_second(alice, receiver, worker):
    destination = make_destination(alice.org, url=receiver.url, rate_limit_per_second=2)
    deliveries = _send(alice.org, destination, 6)

    wait_until(lambda: _all(deliveries, "succeeded"), timeout=10, message="delivered")
    times = sorted(r.at for r in receiver.requests)
    # One attempt per half-second slot: any two requests two apart are at least a slot apart,
    # and six requests in six slots span at least four whole slots (the first may go at the end
    # of its slot, the last at the start of its own), less the receiver's timing jitter.
    assert all(b - a >= 0.4 for a, b in zip(times, times[2:], strict=False)), times
    assert times[-1] - times[0] >= 2.0 - 0.05, times
    assert DeliveryAttempt.objects.filter(destination=destination).count() == 6


@override_settings(HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT=1)
def test_it_keeps_healthy_destinations_flowing_while_another_times_out(alice, receiver, worker):
    hanging = Receiver()
    try:
        hanging.delay = 2.0
        slow = make_destination(
            alice.org, url=hanging.url, timeout_ms=400, retry_intervals=[3600], circuit_breaker_enabled=False
        )
        healthy = make_destination(alice.org, url=receiver.url)
        _send(alice.org, slow, 1)
        hanging.wait_for(1)
        time.sleep(0.5)  # the first time-out is recorded: the destination is failing now
        stuck = _send(alice.org, slow, 40)
        good = _send(alice.org, healthy, 20)

        started = time.monotonic()
        wait_until(lambda: _all(good, "succeeded"), timeout=10, interval=0.02, message="healthy delivered")
        elapsed = time.monotonic() - started

        # The hanging destination was sent at most one request at a time (each attempt spans
        # created_at - duration_ms … created_at), so the healthy one was not queued behind its
        # time-outs (40 × 0.4 s over 4 threads would take 4 s).
        assert _max_overlap(DeliveryAttempt.objects.filter(destination=slow)) == 1
        assert elapsed < 2.5
        assert Delivery.objects.filter(pk__in=[d.id for d in stuck], status="pending").exists()
    finally:
        hanging.close()
