"""Dedup as documented: a strategy turns dedup on; every form of dedup_field works; an event
whose field is absent is stored without dedup and says so."""

import pytest

from intake.models import Event, Source
from tests.intake.helpers import ingest, patch_json, post_json


def test_naming_a_strategy_turns_dedup_on(api, client):
    created = post_json(api, "/v1/sources", {"name": "Vendor", "dedup_strategy": "payload_hash"}).json()
    assert created["dedup_enabled"] is True
    first = ingest(client, created["id"], {"id": 1})
    again = ingest(client, created["id"], {"id": 1})
    assert again.json() == {"event_id": first.json()["event_id"], "source_id": created["id"], "deduplicated": True}
    assert Event.objects.count() == 1
    assert Event.objects.get().dedup_status == "unique"
    # null strategy turns it off again; an explicit dedup_enabled wins.
    off = patch_json(api, f"/v1/sources/{created['id']}", {"dedup_strategy": None}).json()
    assert off["dedup_enabled"] is False
    kept_off = post_json(
        api, "/v1/sources", {"name": "B", "dedup_strategy": "payload_hash", "dedup_enabled": False}
    ).json()
    assert kept_off["dedup_enabled"] is False


@pytest.mark.parametrize(
    ("strategy", "field", "same", "different"),
    [
        ("body_field", "$.data.id", {"data": {"id": "a"}, "n": 1}, {"data": {"id": "b"}}),
        ("body_field", "data.id", {"data": {"id": "a"}, "n": 1}, {"data": {"id": "b"}}),
        ("body_field", "payload.data.id", {"data": {"id": "a"}, "n": 1}, {"data": {"id": "b"}}),
        ("body_field", "$.items[0].sku", {"items": [{"sku": "a"}], "n": 1}, {"items": [{"sku": "b"}]}),
        ("body_field", "headers.x-id", None, None),
        ("header_field", "headers.x-id", None, None),
        ("header_field", "X-Id", None, None),
    ],
)
def test_every_documented_form_of_dedup_field_matches(api, client, strategy, field, same, different):
    created = post_json(api, "/v1/sources", {"name": "V", "dedup_strategy": strategy, "dedup_field": field})
    assert created.status_code == 201, created.content
    source_id = created.json()["id"]
    if same is None:  # a header: same header value, different bodies
        first = ingest(client, source_id, {"n": 1}, HTTP_X_ID="abc")
        again = ingest(client, source_id, {"n": 2}, HTTP_X_ID="abc")
        other = ingest(client, source_id, {"n": 1}, HTTP_X_ID="xyz")
    else:
        first = ingest(client, source_id, same)
        again = ingest(client, source_id, {**same, "n": 2})
        other = ingest(client, source_id, different)
    assert again.json().get("deduplicated") is True and again.json()["event_id"] == first.json()["event_id"]
    assert "deduplicated" not in other.json()
    assert Event.objects.count() == 2


def test_an_event_without_the_field_is_stored_without_dedup_and_says_so(api, client):
    source_id = post_json(
        api, "/v1/sources", {"name": "V", "dedup_strategy": "body_field", "dedup_field": "$.id"}
    ).json()["id"]
    first = ingest(client, source_id, {"other": 1})
    again = ingest(client, source_id, {"other": 1})
    assert "deduplicated" not in again.json()
    statuses = {e.dedup_status for e in Event.objects.all()}
    assert statuses == {"no_key"} and Event.objects.count() == 2
    listed = api.get(f"/v1/events?dedup_status=no_key&source_id={source_id}").json()["events"]
    assert {e["id"] for e in listed} == {first.json()["event_id"], again.json()["event_id"]}
    assert all(e["dedup_status"] == "no_key" for e in listed)
    assert Source.objects.get(pk=source_id).dedup_enabled
