"""The Events API: list with filters and cursor pagination, status derived from deliveries,
detail with headers, body and delivery attempts; isolation."""

import base64
from datetime import timedelta

from django.utils import timezone

from deliveries.models import DeliveryAttempt, DeliveryStatus
from intake.models import Connection
from tests.factories import make_delivery, make_destination, make_event, make_source
from tests.intake.helpers import assert_error, ingest


def _ids(response):
    assert response.status_code == 200, response.content
    return [event["id"] for event in response.json()["events"]]


def test_it_lists_events_newest_first_with_cursor_pagination(alice, api):
    events = [make_event(alice.org) for _ in range(5)]
    first = api.get("/v1/events?limit=2").json()
    assert [e["id"] for e in first["events"]] == [events[4].pk, events[3].pk] and first["has_more"] is True
    second = api.get(f"/v1/events?limit=2&cursor={first['cursor']}").json()
    assert [e["id"] for e in second["events"]] == [events[2].pk, events[1].pk]
    third = api.get(f"/v1/events?limit=2&cursor={second['cursor']}").json()
    assert [e["id"] for e in third["events"]] == [events[0].pk] and third["has_more"] is False
    assert_error(api.get("/v1/events?limit=500"), 400, "limit")


def test_it_filters_events_by_source_and_time(alice, api):
    source = make_source(alice.org)
    now = timezone.now()
    old = make_event(alice.org, source=source, received_at=now - timedelta(hours=2))
    new = make_event(alice.org, source=source, received_at=now)
    make_event(alice.org)
    assert _ids(api.get(f"/v1/events?source_id={source.pk}")) == [new.pk, old.pk]
    cut = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert _ids(api.get(f"/v1/events?source_id={source.pk}&after={cut}")) == [new.pk]
    assert _ids(api.get(f"/v1/events?source_id={source.pk}&before={cut}")) == [old.pk]
    assert_error(api.get("/v1/events?after=yesterday"), 400, "after")
    assert_error(api.get("/v1/events?before=2025-01-01T00:00:00"), 400, "before")


def test_it_derives_the_event_status_from_its_deliveries(alice, api):
    one, two = make_destination(alice.org), make_destination(alice.org)
    cases = {
        "pending": [DeliveryStatus.SUCCEEDED, DeliveryStatus.SCHEDULED],
        "delivered": [DeliveryStatus.SUCCEEDED, DeliveryStatus.SUCCEEDED],
        "failed": [DeliveryStatus.DEAD, DeliveryStatus.CANCELLED],
        "partially_delivered": [DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD],
        "no_deliveries": [],
    }
    expected = {}
    for status, delivery_statuses in cases.items():
        event = make_event(alice.org)
        for destination, delivery_status in zip((one, two), delivery_statuses, strict=False):
            make_delivery(event, destination, status=delivery_status)
        expected[event.pk] = status
    listed = {e["id"]: e["status"] for e in api.get("/v1/events").json()["events"]}
    assert listed == expected
    for status in cases:
        assert _ids(api.get(f"/v1/events?status={status}")) == [pk for pk, s in expected.items() if s == status]
    assert_error(api.get("/v1/events?status=weird"), 400, "status")


def test_it_shows_an_event_with_headers_body_deliveries_and_attempts(alice, api, client):
    source = make_source(alice.org)
    destination = make_destination(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=destination)
    event_id = ingest(client, source, {"a": "é"}, HTTP_X_VENDOR="acme").json()["event_id"]
    detail = api.get(f"/v1/events/{event_id}").json()
    assert detail["headers"]["X-Vendor"] == "acme"
    assert detail["body"] == '{"a": "\\u00e9"}' and detail["body_encoding"] == "utf-8"
    assert detail["payload"] == {"a": "é"}
    assert detail["status"] == "pending"
    assert [d["destination_id"] for d in detail["deliveries"]] == [destination.pk]
    assert detail["delivery_attempts"] == []

    delivery_id = detail["deliveries"][0]["id"]
    DeliveryAttempt.objects.create(
        organization=alice.org,
        delivery_id=delivery_id,
        event_id=event_id,
        destination=destination,
        attempt_number=1,
        status="failed",
        response_status=500,
    )
    attempts = api.get(f"/v1/events/{event_id}").json()["delivery_attempts"]
    assert [(a["attempt_number"], a["status"], a["response_status"]) for a in attempts] == [(1, "failed", 500)]


def test_it_shows_a_binary_body_as_base64(alice, api):
    body = b"\x00\xff\xfebinary"
    event = make_event(alice.org, body=body, content_type="application/octet-stream")
    detail = api.get(f"/v1/events/{event.pk}").json()
    assert detail["body_encoding"] == "base64" and base64.b64decode(detail["body"]) == body


def test_it_leaves_the_event_retry_path_to_the_deliveries_app(alice, api):
    event = make_event(alice.org)
    response = api.post(f"/v1/events/{event.pk}/retry")
    # Not the event detail route (which would answer 405 for a POST).
    assert response.status_code != 405


def test_it_hides_another_organizations_events(alice, bob):
    event = make_event(alice.org, source=make_source(alice.org))
    other = bob.client()
    assert other.get("/v1/events").json()["events"] == []
    assert other.get(f"/v1/events?source_id={event.source_id}").json()["events"] == []
    assert_error(other.get(f"/v1/events/{event.pk}"), 404)


def test_it_answers_bad_ids_with_4xx_never_5xx(alice, api, client):
    for path in ("/v1/sources/%00", "/v1/events/%00", "/v1/connections/a%00b", "/v1/topics/x%00/subscriptions"):
        assert_error(api.get(path), 404)
    assert_error(ingest(client, "src_%00", {"a": 1}), 404)
    assert_error(api.get("/v1/events?source_id=%00"), 400, "source_id")
    assert_error(api.get("/v1/connections?destination_id=a%00"), 400, "destination_id")
