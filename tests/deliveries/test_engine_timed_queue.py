"""Timed wake-ups (retry countdowns) travel on their own queue, so a retry that is due is not
fetched only after a backlog of new deliveries has drained."""

from __future__ import annotations

from deliveries.dispatch import TIMED_QUEUE, destinations_wake_on_commit
from deliveries.engine import process_delivery
from deliveries.models import Delivery, DeliveryAttempt
from hookstream.celery import app
from tests.deliveries.receiver import Receiver, wait_until
from tests.factories import make_delivery, make_destination, make_event


def test_it_declares_the_timed_queue_for_every_worker():
    assert {queue.name for queue in app.conf.task_queues} == {app.conf.task_default_queue, TIMED_QUEUE}


def test_it_retries_on_time_behind_a_backlog_of_new_deliveries(alice, receiver, worker):
    flaky_receiver = Receiver()
    try:
        receiver.delay = 0.02
        busy = make_destination(alice.org, url=receiver.url)
        flaky = make_destination(alice.org, url=flaky_receiver.url, retry_intervals=[1], circuit_breaker_enabled=False)
        # A backlog of new deliveries, queued first: 200 × 0.02 s over four threads, a second or more.
        backlog = [make_delivery(make_event(alice.org), busy) for _ in range(200)]
        destinations_wake_on_commit(d.destination_id for d in backlog)
        # Then a first attempt that fails: its retry (due in one second) is queued after them.
        flaky_receiver.script.append((500, {}, b"once"))
        retried = make_delivery(make_event(alice.org), flaky)
        process_delivery(retried.id)
        assert Delivery.objects.get(pk=retried.pk).status == "scheduled"

        wait_until(lambda: Delivery.objects.get(pk=retried.pk).status == "succeeded", timeout=15, message="retried")
        wait_until(
            lambda: Delivery.objects.filter(pk__in=[d.id for d in backlog], status="succeeded").count() == len(backlog),
            timeout=30,
            message="backlog delivered",
        )
    finally:
        flaky_receiver.close()
    retry = DeliveryAttempt.objects.get(delivery=retried, status="success")
    scheduled = DeliveryAttempt.objects.get(delivery=retried, status="failed").next_retry_at
    last_of_backlog = DeliveryAttempt.objects.filter(delivery__in=backlog).order_by("-created_at").first()
    assert retry.created_at < last_of_backlog.created_at
    assert (retry.created_at - scheduled).total_seconds() < 1.0
