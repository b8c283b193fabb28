"""The batch engine: wake-ups per destination, claims of many rows, bulk records."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries import dispatch, engine
from deliveries.beat import due_wake
from deliveries.models import Delivery, DeliveryAttempt
from destinations.models import CircuitState
from tests.deliveries.conftest import broker_redis, require_redis_broker
from tests.factories import make_delivery, make_destination, make_event
from tests.support import require_postgres


def _statuses(deliveries) -> Counter:
    return Counter(Delivery.objects.filter(pk__in=[d.id for d in deliveries]).values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
def test_it_sends_one_wake_up_for_a_burst_until_a_worker_takes_it(alice):
    require_redis_broker()
    redis = broker_redis()
    redis.flushdb()
    destination = make_destination(alice.org)
    dispatch.destination_wake_taken(destination.pk)
    try:
        for _ in range(50):  # fifty ingests, each committing its delivery
            make_delivery(make_event(alice.org), destination)
            dispatch.destinations_wake_on_commit([destination.pk])
        assert redis.llen("celery") == 1

        # A worker took the wake-up: the next one is a new message, not swallowed.
        dispatch.destination_wake_taken(destination.pk)
        dispatch.destinations_wake_on_commit([destination.pk])
        assert redis.llen("celery") == 2
        # Beat's wake-up goes whatever the key says (the waiting message may be the lost one).
        dispatch.destinations_wake_on_commit([destination.pk], force=True)
        assert redis.llen("celery") == 3
    finally:
        dispatch.destination_wake_taken(destination.pk)
        redis.flushdb()


@pytest.mark.django_db(transaction=True)
def test_it_delivers_a_batch_in_a_few_statements(alice, receiver):
    require_postgres()
    destination = make_destination(alice.org, url=receiver.url)
    deliveries = [make_delivery(make_event(alice.org), destination) for _ in range(40)]

    with CaptureQueriesContext(connection) as queries:
        claimed = engine.process_deliveries(destination.pk, ids=[d.id for d in deliveries])

    assert claimed == 40
    assert _statuses(deliveries) == {"succeeded": 40}
    assert len(receiver.requests) == 40
    assert DeliveryAttempt.objects.filter(destination=destination, status="success").count() == 40
    # Destination, claim, load, state moves, attempts: whatever the batch size.
    statements = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(statements) == 5, statements
    assert sum(1 for sql in statements if sql.startswith('INSERT INTO "deliveries_deliveryattempt"')) == 1


@pytest.mark.django_db(transaction=True)
def test_it_claims_each_delivery_once_under_racing_workers(alice, receiver):
    require_postgres()
    require_redis_broker()  # the workers wake the destination again while work remains
    destination = make_destination(alice.org, url=receiver.url)
    deliveries = [make_delivery(make_event(alice.org), destination) for _ in range(60)]
    barrier = threading.Barrier(4)

    def work():
        try:
            barrier.wait()
            with override_settings(HOOKSTREAM_BATCH_SIZE=7):
                while engine.process_deliveries(destination.pk, ids=None):
                    pass
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert _statuses(deliveries) == {"succeeded": 60}
    sent = Counter(r.headers["X-hookstream-Event-Id"] for r in receiver.requests)
    assert sorted(sent) == sorted(d.event_id for d in deliveries) and set(sent.values()) == {1}
    dispatch.destination_wake_taken(destination.pk)
    broker_redis().flushdb()


@pytest.mark.django_db(transaction=True)
@override_settings(HOOKSTREAM_BATCH_SIZE=5, HOOKSTREAM_DESTINATION_BATCHES=2)
def test_it_yields_after_its_batches_and_wakes_the_destination_again(alice, receiver):
    require_redis_broker()
    redis = broker_redis()
    redis.flushdb()
    destination = make_destination(alice.org, url=receiver.url)
    deliveries = [make_delivery(make_event(alice.org), destination) for _ in range(23)]
    try:
        assert engine.process_deliveries(destination.pk) == 10

        assert _statuses(deliveries) == {"succeeded": 10, "pending": 13}
        # Behind the other destinations' wake-ups: one new message (plus at most one helper).
        assert 1 <= redis.llen("celery") <= 2
    finally:
        dispatch.destination_wake_taken(destination.pk)
        redis.flushdb()


@pytest.mark.django_db(transaction=True)
def test_it_stops_a_failing_batch_at_the_breaker_threshold(alice, receiver):
    receiver.default = (500, {}, b"down")
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_threshold=3, retry_intervals=[3600])
    deliveries = [make_delivery(make_event(alice.org), destination) for _ in range(12)]

    for _ in range(6):
        engine.process_deliveries(destination.pk, ids=[d.id for d in deliveries])

    # Three failures open the circuit; the rest were not attempted but held.
    assert len(receiver.requests) == 3
    assert CircuitState.objects.get(destination=destination).state == "open"
    assert _statuses(deliveries) == {"scheduled": 3, "held": 9}
    attempts = DeliveryAttempt.objects.filter(destination=destination)
    assert attempts.count() == 3 and all(a.next_retry_at and not a.is_dlq for a in attempts)


@pytest.mark.django_db(transaction=True)
def test_it_wakes_a_batch_of_retries_with_one_timed_message(alice, receiver):
    require_redis_broker()
    redis = broker_redis()
    redis.flushdb()
    receiver.default = (500, {}, b"down")
    destination = make_destination(alice.org, url=receiver.url, retry_intervals=[2], circuit_breaker_enabled=False)
    deliveries = [make_delivery(make_event(alice.org), destination) for _ in range(20)]
    try:
        engine.process_deliveries(destination.pk, ids=[d.id for d in deliveries])

        assert _statuses(deliveries) == {"scheduled": 20}
        # Twenty retries due within the same moment: one wake-up of the destination carries them.
        assert redis.llen(dispatch.TIMED_QUEUE) == 1
    finally:
        redis.flushdb()


@pytest.mark.django_db(transaction=True)
def test_beat_wakes_each_destination_with_lost_wake_ups_once(alice):
    require_redis_broker()
    redis = broker_redis()
    redis.flushdb()
    first, second = make_destination(alice.org), make_destination(alice.org)
    long_ago = timezone.now() - timedelta(minutes=2)
    for destination in (first, first, first, second, second):
        make_delivery(make_event(alice.org), destination, created_at=long_ago, woken_at=long_ago)
    try:
        with override_settings(HOOKSTREAM_WAKE_GRACE_SECONDS=60):
            assert due_wake() == 5
        assert redis.llen("celery") == 2
    finally:
        for destination in (first, second):
            dispatch.destination_wake_taken(destination.pk)
        redis.flushdb()
