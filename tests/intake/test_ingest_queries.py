"""Ingest stays lean: a fixed number of statements whatever the number of routes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries import dispatch
from deliveries.models import Delivery
from intake.models import Connection, Event
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest
from tests.support import require_postgres, require_redis


def _statements(client, source, body) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert ingest(client, source, body).status_code == 200
    # The test's own transaction turns ingest's BEGIN/COMMIT (a dedup claim's) into a
    # savepoint: not counted.
    return [q["sql"].split()[0] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_it_ingests_and_fans_out_in_two_statements_on_postgresql(alice, client, monkeypatch):
    require_postgres()
    require_redis()
    monkeypatch.setattr(dispatch, "destination_wake", lambda destination_id, force=False: None)
    source = make_source(alice.org)
    for _ in range(4):
        Connection.objects.create(
            organization=alice.org,
            source=source,
            destination=make_destination(alice.org),
            filter_rules=[{"field": "payload.n", "op": "gte", "value": 0}],
            transform_expression='{"n": n}',
        )
    # The first request reads the source with its routes in one SELECT and learns its
    # organization; the second keeps them under the organization's routing version.
    assert _statements(client, source, {"n": 0}) == ["SELECT", "WITH", "UPDATE"]
    ingest(client, source, {"n": 0})
    # Then: the event with its 4 deliveries (one INSERT … WITH, its own transaction), the
    # source's counters.
    assert _statements(client, source, {"n": 1}) == ["WITH", "UPDATE"]
    assert Delivery.objects.count() == 12
    event = Event.objects.latest("received_at")
    assert Delivery.objects.filter(event=event, transform_pending=True).count() == 4


def test_it_writes_an_event_without_routes_in_one_insert(alice, client):
    require_postgres()
    require_redis()
    source = make_source(alice.org)
    for _ in range(2):
        ingest(client, source, {"n": 0})
    assert _statements(client, source, {"n": 1}) == ["INSERT", "UPDATE"]


def test_it_claims_a_dedup_key_in_the_events_transaction(alice, client, monkeypatch):
    require_postgres()
    require_redis()
    monkeypatch.setattr(dispatch, "destination_wake", lambda destination_id, force=False: None)
    source = make_source(alice.org, dedup_enabled=True, dedup_strategy="payload_hash")
    Connection.objects.create(organization=alice.org, source=source, destination=make_destination(alice.org))
    for n in range(2):
        ingest(client, source, {"n": n})
    assert _statements(client, source, {"n": 2}) == ["INSERT", "WITH", "UPDATE"]
    # A duplicate: the key is taken, nothing is written, nothing is counted.
    assert _statements(client, source, {"n": 2}) == ["INSERT", "UPDATE", "SELECT"]
    assert Event.objects.count() == 3 and Delivery.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_it_stores_and_counts_in_one_round_trip_outside_a_transaction(alice, client, monkeypatch):
    """Served as in production (no surrounding transaction): the event with its deliveries
    committed, then the counters, in one query string."""
    require_postgres()
    require_redis()
    monkeypatch.setattr(dispatch, "destination_wake", lambda destination_id, force=False: None)
    source = make_source(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=make_destination(alice.org))
    for n in range(2):
        ingest(client, source, {"n": n})
    with CaptureQueriesContext(connection) as captured:
        assert ingest(client, source, {"n": 2}).status_code == 200
    (sql,) = [q["sql"] for q in captured.captured_queries]
    assert sql.startswith("BEGIN; WITH new_event AS (INSERT INTO")
    assert sql.index("; COMMIT; UPDATE intake_source") > sql.index('INSERT INTO "deliveries_delivery"')
    assert sql.endswith("SET LOCAL synchronous_commit TO OFF")
    source.refresh_from_db()
    assert source.event_count == 3 and Delivery.objects.count() == 3
