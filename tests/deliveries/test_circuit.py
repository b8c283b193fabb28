"""The circuit breaker (spec §3) with a real worker of 4 threads racing on one destination."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

from deliveries.beat import beat_run
from deliveries.dispatch import destinations_wake_on_commit
from deliveries.models import Delivery, DeliveryAttempt
from destinations.models import CircuitState
from tests.deliveries.receiver import wait_until
from tests.factories import make_delivery, make_destination, make_event


def _circuit(destination) -> CircuitState:
    return CircuitState.objects.get(destination=destination)


def _statuses(deliveries) -> list[str]:
    by_id = dict(Delivery.objects.filter(pk__in=[d.id for d in deliveries]).values_list("id", "status"))
    return [by_id[d.id] for d in deliveries]


def _send(org, destination, count):
    deliveries = [make_delivery(make_event(org), destination) for _ in range(count)]
    destinations_wake_on_commit(d.destination_id for d in deliveries)
    return deliveries


def _race(functions):
    """Run callables at the same moment from separate threads."""
    barrier = threading.Barrier(len(functions))

    def run(fn):
        try:
            barrier.wait()
            fn()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_it_opens_at_the_threshold_holds_probes_once_and_recovers(alice, receiver, worker):
    receiver.default = (500, {}, b"down")
    destination = make_destination(
        alice.org,
        url=receiver.url,
        circuit_breaker_threshold=3,
        circuit_breaker_reset_ms=800,
        retry_intervals=[3600],
    )

    # Two failures: still closed, counting.
    first = _send(alice.org, destination, 2)
    wait_until(lambda: _statuses(first) == ["scheduled"] * 2, message="two failures")
    circuit = _circuit(destination)
    assert (circuit.state, circuit.failure_count) == ("closed", 2)
    assert circuit.last_failure_at is not None

    # The third consecutive failure opens the circuit (at == threshold).
    _send(alice.org, destination, 1)
    wait_until(lambda: _circuit(destination).state == "open", message="open")
    circuit = _circuit(destination)
    assert circuit.failure_count == 3 and circuit.opened_at is not None
    first_opened_at = circuit.opened_at

    # While open: new deliveries are held, not attempted and not counted.
    held = _send(alice.org, destination, 6)
    wait_until(lambda: _statuses(held) == ["held"] * 6, message="held")
    assert len(receiver.requests) == 3
    assert not DeliveryAttempt.objects.filter(delivery__in=[d.id for d in held]).exists()
    assert all(d.attempt_count == 0 for d in Delivery.objects.filter(pk__in=[d.id for d in held]))

    # After the cooldown: 4 worker threads and 4 beat ticks race; exactly one probe — the
    # oldest held delivery — reaches the receiver. It fails (slowly, so the race is real).
    receiver.default = (500, {"__delay__": 0.5}, b"still down")
    time.sleep(0.9)
    racing = [make_delivery(make_event(alice.org), destination) for _ in range(8)]
    _race([lambda: destinations_wake_on_commit(d.destination_id for d in racing)] + [beat_run] * 4)
    receiver.wait_for(4)
    wait_until(lambda: _circuit(destination).state == "open", message="re-opened")
    time.sleep(0.3)
    assert len(receiver.requests) == 4
    assert receiver.requests[3].headers["X-hookstream-Event-Id"] == held[0].event_id
    circuit = _circuit(destination)
    assert circuit.half_opened_at is not None and circuit.opened_at > first_opened_at
    assert circuit.probe_delivery_id is None
    wait_until(lambda: set(_statuses(racing)) == {"held"}, message="racers held")

    # Next cooldown: the next oldest held delivery probes, succeeds, the circuit closes and
    # everything held drains.
    receiver.default = (200, {}, b"ok")
    time.sleep(0.9)
    _race([beat_run] * 4)
    wait_until(lambda: _circuit(destination).state == "closed", message="closed")
    circuit = _circuit(destination)
    assert circuit.failure_count == 0 and circuit.closed_at is not None
    assert receiver.requests[4].headers["X-hookstream-Event-Id"] == held[1].event_id
    wait_until(lambda: set(_statuses(held[1:] + racing)) == {"succeeded"}, message="drained")
    # The failed probe keeps its own retry schedule.
    assert _statuses([held[0]]) == ["scheduled"]
    assert len(receiver.requests) == 4 + 5 + 8


def test_it_drains_held_deliveries_oldest_first(alice, receiver, worker_factory, beat_loop):
    worker_factory(1)
    beat_loop()
    receiver.script.append((500, {}, b"down"))
    destination = make_destination(
        alice.org, url=receiver.url, circuit_breaker_threshold=1, circuit_breaker_reset_ms=3000, retry_intervals=[3600]
    )
    # The cooldown is long enough for all six to be held first even on a busy machine.
    _send(alice.org, destination, 1)
    wait_until(lambda: _circuit(destination).state == "open", message="open")
    held = []
    for _ in range(6):
        held += _send(alice.org, destination, 1)
    wait_until(lambda: _statuses(held) == ["held"] * 6, message="held")

    wait_until(lambda: set(_statuses(held)) == {"succeeded"}, timeout=20, message="drained")
    sent = [r.headers["X-hookstream-Event-Id"] for r in receiver.requests[1:]]
    assert sent == [d.event_id for d in held]
    assert _circuit(destination).state == "closed"


def test_it_does_not_hold_when_the_breaker_is_disabled(alice, receiver, worker):
    receiver.default = (500, {}, b"down")
    destination = make_destination(
        alice.org, url=receiver.url, circuit_breaker_enabled=False, circuit_breaker_threshold=1, retry_intervals=[3600]
    )
    deliveries = _send(alice.org, destination, 3)
    wait_until(lambda: _statuses(deliveries) == ["scheduled"] * 3, message="all attempted")
    assert len(receiver.requests) == 3 and _circuit(destination).state == "closed"


def test_it_sends_exactly_one_probe_with_four_worker_processes(alice, receiver, worker_factory):
    # worker_factory: the checks for PostgreSQL and the Redis broker, and a clean broker db.
    """The same race across four real worker processes (not threads of one process)."""

    receiver.default = (500, {}, b"down")
    destination = make_destination(
        alice.org, url=receiver.url, circuit_breaker_threshold=1, circuit_breaker_reset_ms=1500, retry_intervals=[3600]
    )
    db = settings.DATABASES["default"]
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    command = [sys.executable, "-m", "celery", "-A", "hookstream", "worker", "--pool", "threads", "-c", "2"]
    command += ["--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"]
    processes = [
        subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(4)
    ]
    try:
        _send(alice.org, destination, 1)
        wait_until(lambda: _circuit(destination).state == "open", timeout=60, message="open (workers start first)")
        held = _send(alice.org, destination, 6)
        wait_until(lambda: _statuses(held) == ["held"] * 6, timeout=10, message="held")

        receiver.default = (500, {"__delay__": 0.5}, b"still down")
        wait_until(lambda: _circuit(destination).opened_at.timestamp() + 1.5 < time.time(), message="cooldown over")
        racing = [make_delivery(make_event(alice.org), destination) for _ in range(12)]
        _race([lambda: destinations_wake_on_commit(d.destination_id for d in racing)] + [beat_run] * 4)
        receiver.wait_for(2)
        wait_until(lambda: set(_statuses(racing)) == {"held"}, timeout=10, message="racers held")
        wait_until(lambda: _circuit(destination).state == "open", message="re-opened")
        assert len(receiver.requests) == 2
        assert receiver.requests[1].headers["X-hookstream-Event-Id"] == held[0].event_id

        # Nothing held: new deliveries racing through the gate themselves (no beat) elect
        # exactly one of them as the probe with the conditional UPDATE.
        # The cooldown is already over when they arrive, and long enough that the failed probe's
        # re-opened circuit stays open while the other eleven settle (a second probe after a
        # second cooldown would be right, but is not what this checks).
        bare = make_destination(
            alice.org, url=receiver.url + "/bare", circuit_breaker_threshold=1, circuit_breaker_reset_ms=30_000
        )
        opened = timezone.now() - timedelta(seconds=31)
        CircuitState.objects.filter(destination=bare).update(state="open", opened_at=opened)
        newcomers = [make_delivery(make_event(alice.org), bare) for _ in range(12)]
        destinations_wake_on_commit(d.destination_id for d in newcomers)
        wait_until(lambda: sum(_statuses(newcomers).count(s) for s in ("held", "scheduled")) == 12, message="settled")
        assert len([r for r in receiver.requests if r.path.endswith("/bare")]) == 1
        assert _statuses(newcomers).count("scheduled") == 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
