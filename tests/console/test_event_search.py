"""Console: the event list searched by id, idempotency key, body text and time range, and paged
both ways ("« Newer" and "Older »", the one pager of every console list)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.console.test_events import client_for
from tests.factories import make_delivery, make_destination, make_event

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _at(org, minutes: int, payload=None, **fields):
    when = NOON + timedelta(minutes=minutes)
    return make_event(org, payload, created_at=when, received_at=when, **fields)


def _shown(response) -> list[str]:
    return [event.pk for event in response.context["page"].rows]


def test_it_finds_an_event_by_id_idempotency_key_or_body_text(alice, bob):
    wanted = _at(alice.org, 1, {"type": "order.created", "customer": "Ann Example"})
    keyed = _at(alice.org, 2, idempotency_key="order-77")
    _at(alice.org, 3, {"type": "order.created", "customer": "Bob"})
    foreign = _at(bob.org, 4, {"customer": "Ann Example"})
    client = client_for(alice)
    assert _shown(client.get("/events/", {"search": wanted.pk})) == [wanted.pk]
    assert _shown(client.get("/events/", {"search": "order-77"})) == [keyed.pk]
    assert _shown(client.get("/events/", {"search": "ann exam"})) == [wanted.pk]  # case-insensitive
    # Another organization's id or body is never found.
    assert _shown(client.get("/events/", {"search": foreign.pk})) == []
    html = client.get("/events/", {"search": "ann exam"}).content.decode()
    assert 'name="search" value="ann exam"' in html


def test_it_filters_by_the_time_received(alice):
    early, middle, late = _at(alice.org, 0), _at(alice.org, 30), _at(alice.org, 60)
    client = client_for(alice)
    shown = _shown(client.get("/events/", {"after": "2025-03-01T12:10", "before": "2025-03-01T12:45"}))
    assert shown == [middle.pk]
    # From is inclusive, before is not; a time with a zone is taken as given.
    shown = _shown(client.get("/events/", {"after": "2025-03-01T12:00:00", "before": "2025-03-01T14:00+01:00"}))
    assert shown == [middle.pk, early.pk]
    assert _shown(client.get("/events/", {"after": "2025-03-01T13:00"})) == [late.pk]


def test_a_bad_time_range_is_refused_beside_its_field(alice):
    _at(alice.org, 0)
    response = client_for(alice).get("/events/", {"after": "2025-03-01T13:00", "before": "2025-03-01T12:00"})
    assert response.context["form"].errors["before"] == ["Must be later than “Received from”."]
    assert _shown(response) == []
    response = client_for(alice).get("/events/", {"after": "yesterday-ish"})
    assert "after" in response.context["form"].errors


def test_search_combines_with_the_other_filters(alice):
    destination = make_destination(alice.org)
    hit = _at(alice.org, 0, {"note": "needle"})
    _at(alice.org, 1, {"note": "needle"})

    make_delivery(hit, destination)
    shown = _shown(client_for(alice).get("/events/", {"search": "needle", "destination_id": destination.pk}))
    assert shown == [hit.pk]


def test_pages_go_older_then_newer_without_counting(alice):
    events = [_at(alice.org, -i) for i in range(60)]  # events[0] is the newest
    client = client_for(alice)
    first = client.get("/events/")
    assert _shown(first) == [e.pk for e in events[:25]]
    page = first.context["page"]
    assert page.newer_query is None and page.newest_query is None and page.older_query

    second = client.get(f"/events/?{page.older_query}")
    assert _shown(second) == [e.pk for e in events[25:50]]
    third = client.get(f"/events/?{second.context['page'].older_query}")
    assert _shown(third) == [e.pk for e in events[50:]]
    assert third.context["page"].older_query is None
    html = third.content.decode()
    assert "« Newer" in html and "Older »" not in html

    with CaptureQueriesContext(connection) as queries:
        back = client.get(f"/events/?{third.context['page'].newer_query}")
    assert not [q for q in queries.captured_queries if "COUNT(*)" in q["sql"].upper()]
    assert _shown(back) == [e.pk for e in events[25:50]]
    assert "« Newer" in back.content.decode() and "Older »" in back.content.decode()
    top = client.get(f"/events/?{back.context['page'].newer_query}")
    assert _shown(top) == [e.pk for e in events[:25]]
    assert top.context["page"].newer_query is None and top.context["page"].older_query


def test_newer_pages_do_not_shift_and_the_top_is_a_full_first_page(alice):
    events = [_at(alice.org, -i) for i in range(30)]
    client = client_for(alice)
    second = client.get(f"/events/?{client.get('/events/').context['page'].older_query}")
    # An event arrives meanwhile: "Newer" shows the same 25 as before (pages do not shift),
    # and one more "Newer" the first page, full, with the new event on top.
    newest = _at(alice.org, 5)
    back = client.get(f"/events/?{second.context['page'].newer_query}")
    assert _shown(back) == [e.pk for e in events[:25]]
    top = client.get(f"/events/?{back.context['page'].newer_query}")
    assert _shown(top) == [newest.pk] + [e.pk for e in events[:24]]
    assert top.context["page"].newest_query is None and top.context["page"].newer_query is None


def test_pages_keep_the_filters(alice):
    for i in range(30):
        _at(alice.org, -i, {"note": "needle"})
    _at(alice.org, 1, {"note": "hay"})
    client = client_for(alice)
    first = client.get("/events/", {"search": "needle"})
    older = first.context["page"].older_query
    assert "search=needle" in older
    second = client.get(f"/events/?{older}")
    assert len(_shown(second)) == 5
    assert "search=needle" in second.context["page"].newer_query


def test_a_forged_newer_cursor_shows_the_first_page(alice):
    event = _at(alice.org, 0)
    response = client_for(alice).get("/events/", {"newer": "bm90LWEtY3Vyc29y"}, follow=True)
    assert response.status_code == 200 and _shown(response) == [event.pk]
    assert "no longer valid" in response.content.decode()


def test_every_list_pages_both_ways(alice):
    for n in range(30):
        make_destination(alice.org, name=f"Dest {n:02d}")
    client = client_for(alice)
    older = client.get("/destinations/").context["page"].older_query
    second = client.get(f"/destinations/?{older}")
    assert "« Newer" in second.content.decode()
    back = client.get(f"/destinations/?{second.context['page'].newer_query}")
    assert len(back.context["page"].rows) == 25 and back.context["page"].newer_query is None
