"""The event list's filters: method, verification_status, dedup_status, after/before, search."""

import json
from datetime import UTC, datetime, timedelta

from intake.models import Event
from tests.factories import make_event, make_source
from tests.intake.helpers import assert_error


def _ids(api, **params):
    response = api.get("/v1/events", params)
    assert response.status_code == 200, response.content
    return {e["id"] for e in response.json()["events"]}


def test_it_filters_events_by_method_verification_and_dedup_status(alice, api):
    source = make_source(alice.org)
    get = make_event(alice.org, source=source, method="GET")
    verified = make_event(alice.org, source=source, verification_status="verified", dedup_status="unique")
    no_key = make_event(alice.org, source=source, dedup_status="no_key")
    assert _ids(api, method="GET") == {get.pk}
    assert _ids(api, method="POST") == {verified.pk, no_key.pk}
    assert _ids(api, verification_status="verified") == {verified.pk}
    assert _ids(api, verification_status="unverified") == {get.pk, no_key.pk}
    assert _ids(api, dedup_status="no_key") == {no_key.pk}
    assert _ids(api, dedup_status="unique", method="POST") == {verified.pk}
    for name, value in (("method", "post"), ("verification_status", "maybe"), ("dedup_status", "duplicate")):
        assert_error(api.get("/v1/events", {name: value}), 400, name)


def test_it_filters_by_time(alice, api):
    now = datetime.now(UTC)
    old = make_event(alice.org, received_at=now - timedelta(days=2))
    new = make_event(alice.org, received_at=now)
    assert _ids(api, after=(now - timedelta(days=1)).isoformat()) == {new.pk}
    assert _ids(api, before=(now - timedelta(days=1)).isoformat()) == {old.pk}
    assert_error(api.get("/v1/events", {"after": "yesterday"}), 400, "after")


def test_search_finds_an_event_by_id_idempotency_key_or_body_text(alice, bob, api):
    payload = {"type": "order.created", "customer": "cus_Ab%_9", "city": "Zürich"}
    order = make_event(alice.org, payload, body=json.dumps(payload, ensure_ascii=False).encode())
    other = make_event(alice.org, {"type": "invoice.paid"})
    keyed = make_event(alice.org, {"n": 1}, idempotency_key="checkout-42")
    binary = make_event(alice.org, body=b"\x00\xffmagic-word\x80", payload=None)
    make_event(bob.org, {"type": "order.created", "customer": "cus_Ab%_9"})  # another tenant

    assert _ids(api, search=other.pk) == {other.pk}
    assert _ids(api, search="checkout-42") == {keyed.pk}
    assert _ids(api, search="ORDER.created") == {order.pk}  # case-insensitive
    assert _ids(api, search="cus_Ab%_9") == {order.pk}  # % and _ are literal
    assert _ids(api, search="cus_Ab__9") == set()
    assert _ids(api, search="Zürich") == {order.pk}  # non-ASCII, matched on its UTF-8 bytes
    assert _ids(api, search="magic-word") == {binary.pk}
    assert _ids(api, search="nowhere") == set()
    assert _ids(api, search="or") == set()  # too short for a body search; ids and keys only
    assert Event.objects.count() == 5
