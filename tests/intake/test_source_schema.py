"""Source schemas: reject answers 422 with the errors and stores nothing; warn stores and flags."""

from intake.models import Event
from tests.intake.helpers import assert_error, ingest, patch_json, post_json

SCHEMA = {
    "type": "object",
    "required": ["type", "data"],
    "properties": {
        "type": {"type": "string"},
        "data": {"type": "object", "properties": {"amount": {"type": "integer", "minimum": 0}}},
    },
}


def _source(api, **fields):
    response = post_json(api, "/v1/sources", {"name": "Orders", "schema": SCHEMA, **fields})
    assert response.status_code == 201, response.content
    return response.json()


def test_reject_answers_422_with_the_errors_and_stores_nothing(api, client):
    source = _source(api)
    assert source["schema"] == SCHEMA and source["schema_mode"] == "reject"
    good = ingest(client, source["id"], {"type": "order.created", "data": {"amount": 5}})
    assert good.status_code == 200
    bad = ingest(client, source["id"], {"type": 5, "data": {"amount": -1}})
    body = assert_error(bad, 422, "body")
    assert body["details"]["body"] == [
        "$.data.amount: -1 is less than the minimum of 0",
        "$.type: 5 is not of type 'string'",
    ]
    not_json = ingest(client, source["id"], b"hello", content_type="text/plain")
    assert assert_error(not_json, 422)["details"]["body"] == ["$: the body is not JSON"]
    assert Event.objects.count() == 1
    assert Event.objects.get().schema_status == "valid"


def test_warn_stores_the_event_and_flags_it(api, client):
    source = _source(api, schema_mode="warn")
    response = ingest(client, source["id"], {"data": {}})
    assert response.status_code == 200
    detail = api.get(f"/v1/events/{response.json()['event_id']}").json()
    assert detail["schema_status"] == "invalid"
    assert detail["schema_errors"] == ["$: 'type' is a required property"]
    listed = api.get("/v1/events").json()["events"][0]
    assert listed["schema_status"] == "invalid"


def test_an_invalid_schema_is_refused_and_null_removes_it(api, client):
    bad = post_json(api, "/v1/sources", {"name": "X", "schema": {"type": "nonsense"}})
    assert "Not a valid JSON Schema" in assert_error(bad, 400, "schema")["details"]["schema"][0]
    assert_error(post_json(api, "/v1/sources", {"name": "X", "schema_mode": "maybe"}), 400, "schema_mode")
    source = _source(api)
    cleared = patch_json(api, f"/v1/sources/{source['id']}", {"schema": None}).json()
    assert cleared["schema"] is None
    assert ingest(client, source["id"], b"anything", content_type="text/plain").status_code == 200
    assert Event.objects.get().schema_status == ""
