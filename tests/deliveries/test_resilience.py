"""Nothing is lost and nothing is sent twice: duplicate tasks, dead workers, a flushed broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from deliveries import engine
from deliveries.beat import beat_run, leases_reclaim
from deliveries.dispatch import destinations_wake_on_commit
from deliveries.models import Delivery, DeliveryAttempt
from deliveries.tasks import deliver
from tests.deliveries.conftest import broker_redis, require_redis_broker
from tests.deliveries.receiver import wait_until
from tests.factories import make_delivery, make_destination, make_event


def _status(delivery_id):
    return Delivery.objects.get(pk=delivery_id).status


def test_it_sends_once_when_the_task_is_delivered_five_times(alice, receiver, worker):
    receiver.default = (200, {"__delay__": 0.3}, b"ok")
    destination = make_destination(alice.org, url=receiver.url)
    delivery = make_delivery(make_event(alice.org), destination)

    for _ in range(5):
        deliver.delay(delivery.id)

    wait_until(lambda: _status(delivery.id) == "succeeded", message="succeeded")
    time.sleep(0.5)  # let every duplicate run
    assert len(receiver.requests) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_retries_a_delivery_whose_worker_died_after_its_lease(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url)
    delivery = make_delivery(make_event(alice.org), destination)
    # A worker claims the delivery and dies before recording anything.
    now = timezone.now()
    lease = now + timedelta(seconds=settings.HOOKSTREAM_LEASE_SECONDS)
    assert engine._claim_batch(destination.pk, [delivery.id], now, lease, 1) == [delivery.id]
    assert _status(delivery.id) == "in_flight"
    engine.process_delivery(delivery.id)  # a duplicate task: the lease is live, nothing sent
    assert receiver.requests == []

    # Before the lease expires beat leaves it alone; after, it is reclaimed and sent.
    assert leases_reclaim() == 0
    Delivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert leases_reclaim() == 1
    assert _status(delivery.id) == "pending"
    engine.process_delivery(delivery.id)
    assert _status(delivery.id) == "succeeded" and len(receiver.requests) == 1

    # The dead worker's late result (stale lease) does not overwrite the state.
    late = engine._Attempt(delivery, 1, "initial", engine.Outcome.retry("late"), 1)
    engine._record_batch(destination, lease, [late], None)
    assert _status(delivery.id) == "succeeded"


def test_it_redelivers_after_a_real_worker_is_killed_mid_attempt(alice, receiver, worker_factory, beat_loop):
    """A worker subprocess is SIGKILLed while the receiver holds its request open; its task
    message is unacked in Redis for an hour (the visibility timeout), so recovery must come
    from the lease in the database."""
    receiver.script.append((200, {"__delay__": 30}, b"too late"))
    destination = make_destination(alice.org, url=receiver.url)
    delivery = make_delivery(make_event(alice.org), destination)
    destinations_wake_on_commit([delivery.destination_id])

    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hookstream",
            "worker",
            "--pool",
            "threads",
            "-c",
            "1",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        receiver.wait_for(1, timeout=20)
        assert _status(delivery.id) == "in_flight"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # The dead worker's lease still protects the delivery: a healthy worker and beat leave it.
    worker_factory(2)
    beat_loop()
    time.sleep(0.6)
    assert _status(delivery.id) == "in_flight" and len(receiver.requests) == 1
    # Once the lease has run out (fast-forwarded here rather than waited for), beat reclaims it.
    Delivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    wait_until(lambda: _status(delivery.id) == "succeeded", timeout=15, message="redelivered")
    assert len(receiver.requests) == 2
    assert receiver.requests[1].headers["X-hookstream-Event-Id"] == delivery.event_id
    assert DeliveryAttempt.objects.filter(delivery=delivery, status="success").count() == 1


@override_settings(HOOKSTREAM_WAKE_GRACE_SECONDS=0.5)
def test_it_delivers_everything_after_the_broker_is_flushed(alice, receiver, worker_factory, beat_loop):
    destination = make_destination(alice.org, url=receiver.url, retry_intervals=[1], circuit_breaker_enabled=False)
    # Pending deliveries whose wake-ups are in the broker, and deliveries scheduled for a
    # retry whose countdown messages are in the broker too. No worker is running yet.
    pending = [make_delivery(make_event(alice.org), destination) for _ in range(10)]
    due = timezone.now() + timedelta(seconds=1)
    scheduled = [
        make_delivery(
            make_event(alice.org), destination, status="scheduled", attempt_count=1, next_attempt_at=due, woken_at=due
        )
        for _ in range(5)
    ]
    destinations_wake_on_commit(d.destination_id for d in pending)
    for d in scheduled:
        deliver.apply_async((d.id,), countdown=1)
    redis = broker_redis()
    assert redis.dbsize() > 0

    redis.flushdb()  # this environment's broker database only

    worker_factory(4)
    beat_loop()
    every = pending + scheduled
    wait_until(
        lambda: Delivery.objects.filter(pk__in=[d.id for d in every], status="succeeded").count() == 15,
        timeout=15,
        message="all delivered",
    )
    assert sorted(r.headers["X-hookstream-Event-Id"] for r in receiver.requests) == sorted(d.event_id for d in every)


@pytest.mark.django_db(transaction=True)
def test_it_wakes_a_due_delivery_only_once_per_grace_period(alice):
    require_redis_broker()
    destination = make_destination(alice.org)
    # A delivery whose wake-up was lost long ago, and a new one whose creator just enqueued it.
    lost = make_delivery(make_event(alice.org), destination, created_at=timezone.now() - timedelta(minutes=2))
    fresh = make_delivery(make_event(alice.org), destination)
    redis = broker_redis()
    redis.flushdb()
    with override_settings(HOOKSTREAM_WAKE_GRACE_SECONDS=60):
        beat_run()
        beat_run()
    assert redis.llen("celery") == 1
    assert Delivery.objects.get(pk=lost.pk).woken_at is not None
    assert Delivery.objects.get(pk=fresh.pk).woken_at is None
    redis.flushdb()
