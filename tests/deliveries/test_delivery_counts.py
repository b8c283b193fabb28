"""Per-destination delivery counts kept by triggers (PostgreSQL): exact, and cheap to read."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.counters import delivery_counts_fold
from deliveries.models import Delivery, DestinationDeliveryCount
from deliveries.retention import purge_events
from tests.factories import make_destination, make_event
from tests.support import require_postgres


def _counts(api):
    return {row["id"]: row["delivery_count"] for row in api.get("/v1/destinations").json()["destinations"]}


def _add(org, destination, n):
    event = make_event(org)
    Delivery.objects.bulk_create(Delivery(organization=org, event=event, destination=destination) for _ in range(n))
    return event


def test_counts_follow_inserts_and_deletes_and_survive_folding(alice, api):
    require_postgres()
    one, two = make_destination(alice.org), make_destination(alice.org)
    _add(alice.org, one, 3)
    _add(alice.org, one, 2)
    _add(alice.org, two, 4)
    Delivery.objects.create(organization=alice.org, event=make_event(alice.org), destination=two)
    assert _counts(api) == {one.id: 5, two.id: 5}
    assert DestinationDeliveryCount.objects.count() == 4  # one row per statement and destination

    assert delivery_counts_fold() == 4
    assert DestinationDeliveryCount.objects.count() == 2
    assert _counts(api) == {one.id: 5, two.id: 5}

    doomed = list(Delivery.objects.filter(destination=one).values_list("pk", flat=True)[:2])
    Delivery.objects.filter(pk__in=doomed).delete()
    assert _counts(api) == {one.id: 3, two.id: 5}
    delivery_counts_fold()
    assert _counts(api) == {one.id: 3, two.id: 5}
    assert {c.destination_id: c.n for c in DestinationDeliveryCount.objects.all()} == {one.id: 3, two.id: 5}


def test_retention_purge_lowers_the_count(alice, api):
    require_postgres()
    destination = make_destination(alice.org)
    old = _add(alice.org, destination, 3)
    _add(alice.org, destination, 1)
    type(old).objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=40))
    Delivery.objects.filter(event=old).update(status="succeeded")
    purge_events(age=timedelta(days=30))
    assert _counts(api) == {destination.id: 1}


def test_the_list_never_reads_the_deliveries(alice, api):
    require_postgres()
    destination = make_destination(alice.org)
    _add(alice.org, destination, 2)
    with CaptureQueriesContext(connection) as queries:
        assert _counts(api) == {destination.id: 2}
    listing = [q["sql"] for q in queries.captured_queries if "destinations_destination" in q["sql"]]
    assert listing and not any('"deliveries_delivery"' in sql for sql in listing)


@pytest.mark.django_db(transaction=True)
def test_a_fold_racing_with_inserts_loses_nothing(alice):
    require_postgres()
    destination = make_destination(alice.org)
    stop = threading.Event()

    def insert_many():
        try:
            for _ in range(60):
                _add(alice.org, destination, 2)
        finally:
            connections.close_all()
            stop.set()

    writer = threading.Thread(target=insert_many)
    writer.start()
    while not stop.is_set():
        delivery_counts_fold()
    writer.join()
    delivery_counts_fold()
    rows = list(DestinationDeliveryCount.objects.filter(destination_id=destination.id).values_list("n", flat=True))
    assert rows == [120] == [Delivery.objects.filter(destination=destination).count()]
