"""List pages stay cheap on big tables: a fixed number of queries, no row count, a cursor bound
an index can start from, and an event status computed per event of the page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.models import DeliveryAttempt, DeliveryStatus
from tests.factories import make_delivery, make_destination, make_event
from tests.support import require_postgres


def _page_queries(api, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path)
    assert response.status_code == 200, response.content
    return [q["sql"] for q in captured.captured_queries]


def _fill(org, events: int) -> None:
    destination = make_destination(org)
    for n in range(events):
        event = make_event(org)
        status = DeliveryStatus.DEAD if n % 3 == 0 else DeliveryStatus.SUCCEEDED
        delivery = make_delivery(event, destination, status=status)
        DeliveryAttempt.objects.create(
            organization=org, delivery=delivery, event=event, destination=destination, attempt_number=1
        )


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events?status=failed", "/v1/delivery-attempts"])
def test_it_answers_a_page_in_the_same_queries_whatever_the_table_size(alice, api, path):
    _fill(alice.org, 3)
    small = _page_queries(api, path)
    _fill(alice.org, 30)
    large = _page_queries(api, path)

    assert len(large) == len(small)
    assert not [sql for sql in large if "COUNT(*)" in sql.upper()]


def test_it_bounds_a_deep_page_by_its_cursor_timestamp(alice, api):
    require_postgres()
    _fill(alice.org, 5)
    cursor = api.get("/v1/events?limit=2").json()["cursor"]

    page = [sql for sql in _page_queries(api, f"/v1/events?limit=2&cursor={cursor}") if "LIMIT 3" in sql]

    assert len(page) == 1
    assert '"intake_event"."received_at" <=' in page[0]


def test_it_derives_the_status_without_exists_probes(alice, api):
    """EXISTS in the select list can become a hashed subplan reading every delivery."""
    _fill(alice.org, 3)
    page = [sql for sql in _page_queries(api, "/v1/events") if '"intake_event"' in sql and "LIMIT" in sql]

    assert len(page) == 1
    assert "EXISTS" not in page[0].upper()
    assert [e["status"] for e in api.get("/v1/events").json()["events"]] == ["delivered", "delivered", "failed"]


def test_the_pending_filter_starts_from_the_unfinished_deliveries(alice, api):
    """A filter that matches few events must not derive the status of every event first."""
    destination = make_destination(alice.org)
    finished = [make_delivery(make_event(alice.org), destination, status=s) for s in ("succeeded", "dead")]
    waiting = {s: make_delivery(make_event(alice.org), destination, status=s) for s in ("scheduled", "held")}
    mixed = make_event(alice.org)  # one delivery done, one still on its way: pending
    make_delivery(mixed, destination, status=DeliveryStatus.SUCCEEDED)
    make_delivery(mixed, make_destination(alice.org), status=DeliveryStatus.IN_FLIGHT)

    body = api.get("/v1/events?status=pending").json()
    assert {e["id"] for e in body["events"]} == {d.event_id for d in waiting.values()} | {mixed.id}
    assert all(e["status"] == "pending" for e in body["events"])
    assert not {d.event_id for d in finished} & {e["id"] for e in body["events"]}
    page = [sql for sql in _page_queries(api, "/v1/events?status=pending") if sql.startswith('SELECT "intake_event"')]
    # A semi-join on the unfinished deliveries (the partial index delivery_event_unfinished).
    assert len(page) == 1 and " IN (SELECT " in page[0] and "'in_flight', 'scheduled', 'held')" in page[0]
