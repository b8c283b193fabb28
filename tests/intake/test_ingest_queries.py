"""Ingest stays lean: a fixed number of queries whatever the number of routes."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries import dispatch
from deliveries.models import Delivery
from intake.models import Connection
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest


def test_it_ingests_and_fans_out_in_four_queries_on_postgresql(alice, client, monkeypatch):
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
    ingest(client, source, {"n": 0})  # warm-up: first-request work (content types, caches)
    with CaptureQueriesContext(connection) as captured:
        assert ingest(client, source, {"n": 1}).status_code == 200
    # The test's own transaction turns ingest's BEGIN/COMMIT into a savepoint: not counted.
    statements = [q["sql"].split()[0] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    # The source with its routes (one SELECT on PostgreSQL, two elsewhere), the event, the
    # deliveries (one bulk insert), the source's counters.
    lookups = ["SELECT"] if connection.vendor == "postgresql" else ["SELECT", "SELECT"]
    assert statements == [*lookups, "INSERT", "INSERT", "UPDATE"], captured.captured_queries
    assert Delivery.objects.count() == 8
