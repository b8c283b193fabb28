"""The Connections API: CRUD, filters on the list, rule and expression validation, isolation."""

import pytest

from intake.models import Connection
from tests.factories import make_destination, make_source
from tests.intake.helpers import assert_error, patch_json, post_json


@pytest.fixture
def pair(alice):
    return make_source(alice.org), make_destination(alice.org)


def test_it_creates_lists_filters_updates_and_deletes_a_connection(alice, api, pair):
    source, destination = pair
    rules = [{"field": "payload.type", "op": "in", "value": ["a", "b"]}]
    response = post_json(
        api,
        "/v1/connections",
        {
            "source_id": source.pk,
            "destination_id": destination.pk,
            "filter_rules": rules,
            "transform_expression": '{"t": type}',
        },
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["filter_rules"] == rules and created["enabled"] is True
    other_source = make_source(alice.org)
    other = post_json(api, "/v1/connections", {"source_id": other_source.pk, "destination_id": destination.pk})
    assert other.status_code == 201

    everything = api.get("/v1/connections").json()["connections"]
    assert {c["id"] for c in everything} == {created["id"], other.json()["id"]}
    by_source = api.get(f"/v1/connections?source_id={source.pk}").json()["connections"]
    assert [c["id"] for c in by_source] == [created["id"]]
    by_destination = api.get(f"/v1/connections?destination_id={destination.pk}").json()["connections"]
    assert len(by_destination) == 2
    assert api.get("/v1/connections?destination_id=dst_none").json()["connections"] == []

    updated = patch_json(api, f"/v1/connections/{created['id']}", {"filter_rules": [], "enabled": False})
    assert updated.status_code == 200
    assert updated.json()["filter_rules"] == [] and updated.json()["enabled"] is False
    assert updated.json()["transform_expression"] == '{"t": type}'

    assert api.delete(f"/v1/connections/{created['id']}").json() == {"success": True}
    assert Connection.objects.count() == 1


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"filter_rules": [{"field": "payload.a", "op": "gt", "value": "1"}]}, "filter_rules", "gt needs a number"),
        ({"filter_rules": [{"field": "payload.a", "op": "matches", "value": "x"}]}, "filter_rules", "op must be"),
        ({"filter_rules": {"field": "payload.a"}}, "filter_rules", "array"),
        ({"transform_expression": '{"a": '}, "transform_expression", "invalid JSONata"),
        ({"transform_expression": 42}, "transform_expression", "valid string"),
    ],
)
def test_it_refuses_invalid_rules_or_expressions_saying_what_is_wrong(api, pair, extra, field, message):
    source, destination = pair
    body = {"source_id": source.pk, "destination_id": destination.pk, **extra}
    error = assert_error(post_json(api, "/v1/connections", body), 400, field)
    assert any(message in text for text in error["details"][field]), error


def test_it_refuses_invalid_rules_on_update(alice, api, pair):
    source, destination = pair
    connection = Connection.objects.create(organization=alice.org, source=source, destination=destination)
    response = patch_json(api, f"/v1/connections/{connection.pk}", {"filter_rules": [{"field": "x", "op": "eq"}]})
    assert_error(response, 400, "filter_rules")
    response = patch_json(api, f"/v1/connections/{connection.pk}", {"transform_expression": "$$$("})
    assert_error(response, 400, "transform_expression")


def test_it_refuses_sources_and_destinations_it_cannot_see(alice, bob, api, pair):
    source, destination = pair
    bobs_source, bobs_destination = make_source(bob.org), make_destination(bob.org)
    assert_error(
        post_json(api, "/v1/connections", {"source_id": bobs_source.pk, "destination_id": destination.pk}),
        400,
        "source_id",
    )
    assert_error(
        post_json(api, "/v1/connections", {"source_id": source.pk, "destination_id": bobs_destination.pk}),
        400,
        "destination_id",
    )
    assert_error(post_json(api, "/v1/connections", {"source_id": source.pk}), 400, "destination_id")
    assert Connection.objects.count() == 0


def test_it_hides_another_organizations_connections(alice, bob, pair):
    source, destination = pair
    connection = Connection.objects.create(organization=alice.org, source=source, destination=destination)
    api = bob.client()
    assert api.get("/v1/connections").json()["connections"] == []
    assert api.get(f"/v1/connections?source_id={source.pk}").json()["connections"] == []
    assert_error(api.get(f"/v1/connections/{connection.pk}"), 404)
    assert_error(patch_json(api, f"/v1/connections/{connection.pk}", {"enabled": False}), 404)
    assert_error(api.delete(f"/v1/connections/{connection.pk}"), 404)
    assert Connection.objects.get().enabled is True
