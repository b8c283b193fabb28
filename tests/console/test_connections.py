"""Console: connections — list, create/edit with JSON filter rules and a transform checked by
the service, delete, isolation, CSRF and escaping."""

import json

import pytest

from intake.models import Connection
from tests.console.test_events import XSS, XSS_ESCAPED, client_for
from tests.factories import make_destination, make_source

RULES = [{"field": "payload.type", "op": "eq", "value": "order.created"}]


@pytest.fixture
def route(alice):
    return make_source(alice.org, name="Shop"), make_destination(alice.org, name="Warehouse")


def form(source, destination, **fields) -> dict:
    data = {
        "name": "orders",
        "source_id": source.pk,
        "destination_id": destination.pk,
        "filter_rules": json.dumps(RULES),
        "transform_expression": '{"order": id}',
        "enabled": "on",
    }
    data.update(fields)
    return data


def test_it_creates_a_connection_with_filters_and_a_transform(alice, route):
    source, destination = route
    client = client_for(alice)
    page = client.get(f"/connections/new/?source_id={source.pk}").content.decode()
    assert f'<option value="{source.pk}" selected>Shop</option>' in page
    assert "Warehouse" in page

    response = client.post("/connections/new/", form(source, destination))
    assert response.status_code == 302 and response["Location"] == "/connections/"
    connection = Connection.objects.get(organization=alice.org)
    assert (connection.source, connection.destination, connection.name) == (source, destination, "orders")
    assert connection.filter_rules == RULES and connection.transform_expression == '{"order": id}'
    assert connection.enabled

    listed = client.get("/connections/").content.decode()
    assert "Shop" in listed and "Warehouse" in listed and "1 rule" in listed


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"filter_rules": "[{"}, "filter_rules", "Not valid JSON"),
        ({"filter_rules": "[" * 100_000 + "]" * 100_000}, "filter_rules", "nested too deeply"),
        ({"filter_rules": "[" * 500 + "]" * 500}, "filter_rules", "rule 0"),
        (
            {"filter_rules": '[{"field": "payload.x", "op": "almost", "value": 1}]'},
            "filter_rules",
            "rule 0: op must be one of",
        ),
        ({"filter_rules": '{"field": "payload"}'}, "filter_rules", ""),
        ({"transform_expression": "{{{ nope"}, "transform_expression", ""),
        ({"source_id": ""}, "source_id", "This field is required."),
        ({"destination_id": "dst_doesnotexist"}, "destination_id", "Select a valid choice"),
        ({"name": "x" * 201}, "name", "at most 200 characters"),
    ],
)
def test_bad_input_is_shown_beside_the_field(alice, route, fields, field, message):
    response = client_for(alice).post("/connections/new/", form(*route, **fields))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert 'class="field has-error' in response.content.decode()
    assert not Connection.objects.filter(organization=alice.org).exists()


def test_it_edits_a_connection(alice, route):
    source, destination = route
    connection = Connection.objects.create(
        organization=alice.org, source=source, destination=destination, filter_rules=RULES
    )
    other = make_destination(alice.org, name="Analytics")
    client = client_for(alice)
    page = client.get(f"/connections/{connection.pk}/edit/").content.decode()
    assert "&quot;payload.type&quot;" in page  # the rules, as indented JSON in the textarea

    response = client.post(
        f"/connections/{connection.pk}/edit/",
        form(source, other, name="to analytics", filter_rules="", transform_expression=""),
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.destination == other and connection.name == "to analytics"
    assert connection.filter_rules == [] and connection.transform_expression == "" and connection.enabled

    refused = client.post(f"/connections/{connection.pk}/edit/", form(source, other, filter_rules="[1]"))
    assert refused.status_code == 200 and "filter_rules" in refused.context["form"].errors
    connection.refresh_from_db()
    assert connection.filter_rules == []


def test_unchecking_enabled_disables_it(alice, route):
    source, destination = route
    connection = Connection.objects.create(organization=alice.org, source=source, destination=destination)
    data = form(source, destination)
    data.pop("enabled")
    assert client_for(alice).post(f"/connections/{connection.pk}/edit/", data).status_code == 302
    connection.refresh_from_db()
    assert connection.enabled is False


def test_delete_asks_first(alice, route):
    connection = Connection.objects.create(organization=alice.org, source=route[0], destination=route[1])
    client = client_for(alice)
    assert client.get(f"/connections/{connection.pk}/delete/").status_code == 200
    assert Connection.objects.filter(pk=connection.pk).exists()
    assert client.post(f"/connections/{connection.pk}/delete/").status_code == 302
    assert not Connection.objects.filter(pk=connection.pk).exists()


def test_every_post_enforces_csrf(alice, route):
    connection = Connection.objects.create(organization=alice.org, source=route[0], destination=route[1], name="kept")
    client = client_for(alice, enforce_csrf=True)
    assert client.post("/connections/new/", form(*route)).status_code == 403
    assert client.post(f"/connections/{connection.pk}/edit/", form(*route, name="changed")).status_code == 403
    assert client.post(f"/connections/{connection.pk}/delete/").status_code == 403
    assert list(Connection.objects.values_list("name", flat=True)) == ["kept"]


def test_another_organizations_ids_are_404s_or_refused_and_nothing_changes(alice, bob, route):
    source, destination = route
    connection = Connection.objects.create(organization=alice.org, source=source, destination=destination, name="a")
    bob_client = client_for(bob)
    for path in (f"/connections/{connection.pk}/edit/", f"/connections/{connection.pk}/delete/"):
        assert bob_client.get(path).status_code == 404
        assert bob_client.post(path, form(source, destination, name="b")).status_code == 404
    assert connection.pk not in bob_client.get("/connections/").content.decode()

    # Bob cannot route his events into alice's destination, nor alice's source into his.
    bob_source, bob_destination = make_source(bob.org), make_destination(bob.org)
    for fields in ({"source_id": source.pk, "destination_id": bob_destination.pk}, {"destination_id": destination.pk}):
        response = bob_client.post("/connections/new/", form(bob_source, bob_destination, **fields))
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert list(Connection.objects.values_list("name", flat=True)) == ["a"]


def test_user_values_are_escaped(alice):
    source = make_source(alice.org, name=XSS)
    destination = make_destination(alice.org, name=XSS)
    connection = Connection.objects.create(
        organization=alice.org, source=source, destination=destination, name=XSS, transform_expression=XSS
    )
    client = client_for(alice)
    for path in ("/connections/", f"/connections/{connection.pk}/edit/", f"/connections/{connection.pk}/delete/"):
        html = client.get(path).content.decode()
        assert XSS not in html, path
        assert XSS_ESCAPED in html, path
    refused = client.post("/connections/new/", form(source, destination, filter_rules=XSS)).content.decode()
    assert XSS not in refused


def test_the_list_filters_by_source_and_ignores_a_malformed_one(alice, route):
    source, destination = route
    other = make_source(alice.org, name="Other")
    mine = Connection.objects.create(organization=alice.org, source=source, destination=destination, name="mine")
    theirs = Connection.objects.create(organization=alice.org, source=other, destination=destination, name="theirs")
    client = client_for(alice)
    html = client.get("/connections/", {"source_id": source.pk}).content.decode()
    assert mine.pk in html and theirs.pk not in html
    response = client.get("/connections/", {"source_id": "\x00"})
    assert response.status_code == 200 and mine.pk in response.content.decode()
