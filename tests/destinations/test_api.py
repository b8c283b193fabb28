"""The Destinations API beyond the page: isolation, pagination, defaults and spellings,
circuit, delete, resume, routes."""

import json
from datetime import timedelta

import pytest
from django.urls import Resolver404, resolve
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue, Destination, DestinationStatus
from destinations.views import DestinationViewSet
from tests.destinations.helpers import assert_error_body, patch_json, post_json
from tests.factories import make_delivery, make_destination, make_event

HTTP = {"name": "Hook", "type": "http", "url": "https://hooks.example.com/in"}


# --- isolation -------------------------------------------------------------------------------


def _endpoints(destination_id):
    return [
        ("get", f"/v1/destinations/{destination_id}", None),
        ("patch", f"/v1/destinations/{destination_id}", {"name": "stolen"}),
        ("delete", f"/v1/destinations/{destination_id}", None),
        ("get", f"/v1/destinations/{destination_id}/circuit", None),
        ("post", f"/v1/destinations/{destination_id}/circuit/reset", None),
    ]


def test_it_answers_404_to_another_organization_on_every_destination_endpoint(alice, bob):
    destination = make_destination(alice.org, name="Alice's")
    CircuitState.objects.filter(destination=destination).update(state=CircuitStateValue.OPEN, failure_count=5)
    intruder = bob.client()

    for method, path, body in _endpoints(destination.id):
        response = getattr(intruder, method)(path, body, format="json")
        assert_error_body(response, 404)

    assert intruder.get("/v1/destinations").json()["destinations"] == []
    destination = Destination.objects.get(pk=destination.pk)
    assert destination.name == "Alice's" and destination.deleted_at is None
    assert CircuitState.objects.get(destination=destination).state == CircuitStateValue.OPEN


def test_it_answers_404_on_every_endpoint_of_a_deleted_destination(api, alice):
    destination = make_destination(alice.org)
    api.delete(f"/v1/destinations/{destination.id}")

    for method, path, body in _endpoints(destination.id):
        assert_error_body(getattr(api, method)(path, body, format="json"), 404)


def test_it_answers_401_without_a_key_on_every_destination_endpoint(alice, client):
    destination = make_destination(alice.org)

    for method, path, _ in [*_endpoints(destination.id), ("get", "/v1/destinations", None)]:
        assert_error_body(getattr(client, method)(path), 401)


# --- pagination ------------------------------------------------------------------------------


def test_it_pages_45_destinations_without_duplicates_or_gaps_under_concurrent_inserts(api, alice):
    originals = {make_destination(alice.org).id for _ in range(45)}
    seen, inserted, pages = [], set(), 0
    cursor = None
    while True:
        query = "?limit=20" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(f"/v1/destinations{query}").json()
        pages += 1
        seen += [row["id"] for row in body["destinations"]]
        # Another client creates destinations between our pages.
        for _ in range(3):
            created = post_json(api, "/v1/destinations", {**HTTP, "name": f"new {pages}"}).json()
            inserted.add(created["id"])
        if not body["has_more"]:
            assert body["cursor"] is None
            break
        cursor = body["cursor"]

    assert pages == 3
    assert len(seen) == len(set(seen)) == 45
    assert set(seen) == originals
    assert not inserted & set(seen)


def test_it_pages_rows_with_the_same_created_at_by_id(api, alice):
    moment = timezone.now() - timedelta(hours=1)
    ids = {make_destination(alice.org, created_at=moment).id for _ in range(7)}
    seen, cursor = [], None
    while True:
        body = api.get("/v1/destinations?limit=3" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [row["id"] for row in body["destinations"]]
        if not body["has_more"]:
            break
        cursor = body["cursor"]

    assert seen == sorted(ids, reverse=True)


def test_it_lists_newest_first_with_the_default_limit_of_20(api, alice):
    now = timezone.now()
    made = [make_destination(alice.org, created_at=now - timedelta(minutes=i)).id for i in range(25)]

    body = api.get("/v1/destinations").json()

    assert [row["id"] for row in body["destinations"]] == made[:20]
    assert body["has_more"] is True and body["cursor"]


def test_it_counts_deliveries_in_the_list_without_a_query_per_row(api, alice, django_assert_max_num_queries):
    destinations = [make_destination(alice.org) for _ in range(6)]
    event = make_event(alice.org)
    for index, destination in enumerate(destinations):
        for _ in range(index):
            make_delivery(event, destination)

    with django_assert_max_num_queries(8):
        body = api.get("/v1/destinations").json()

    counts = {row["id"]: row["delivery_count"] for row in body["destinations"]}
    assert counts == {d.id: i for i, d in enumerate(destinations)}


# --- defaults and other spellings ------------------------------------------------------------


def test_it_applies_every_default_of_the_spec(api):
    body = post_json(api, "/v1/destinations", HTTP).json()

    assert body["method"] == "POST"
    assert body["headers"] == {}
    assert body["timeout_ms"] == 30000
    assert body["retry_max_attempts"] == 5
    assert body["retry_backoff_type"] == "exponential"
    assert body["retry_intervals"] == [30, 300, 1800, 7200, 86400]
    assert body["circuit_breaker_enabled"] is True
    assert body["circuit_breaker_threshold"] == 5
    assert body["circuit_breaker_reset_ms"] == 60000
    assert body["status"] == "active"
    assert body["retry_jitter"] is False
    assert body["max_concurrency"] is None and body["rate_limit_per_second"] is None
    assert body["delivery_count"] == 0
    assert body["slug"] == "hook"


def test_it_accepts_config_and_timeout_in_seconds(api):
    body = {
        "name": "Queue",
        "type": "aws_sqs",
        "timeout": 2.5,
        "config": {
            "queue_url": "https://sqs.eu-west-1.amazonaws.com/123/q",
            "region": "eu-west-1",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG",
        },
    }

    response = post_json(api, "/v1/destinations", body)

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["type"] == "sqs"
    assert created["timeout_ms"] == 2500
    assert created["provider_config"]["queue_url"] == "https://sqs.eu-west-1.amazonaws.com/123/q"
    assert "config" not in created and "timeout" not in created


@pytest.mark.parametrize(
    "alias,canonical",
    [("aws_sqs", "sqs"), ("aws_s3", "s3"), ("aws_eventbridge", "eventbridge"), ("gcp_pubsub", "pubsub")],
)
def test_it_normalizes_type_aliases(api, alias, canonical):
    configs = {
        "sqs": {"queue_url": "https://sqs.example/1/q", "region": "r", "access_key_id": "a", "secret_access_key": "s"},
        "s3": {"bucket": "b", "region": "r", "access_key_id": "a", "secret_access_key": "s"},
        "eventbridge": {"region": "r", "access_key_id": "a", "secret_access_key": "s"},
        "pubsub": {"project_id": "p", "topic_id": "t", "service_account_json": "{}"},
    }

    response = post_json(api, "/v1/destinations", {"name": alias, "type": alias, "provider_config": configs[canonical]})

    assert response.status_code == 201, response.content
    assert response.json()["type"] == canonical
    assert Destination.objects.get(pk=response.json()["id"]).type == canonical


def test_it_creates_one_destination_of_every_type(api):
    bodies = [
        {"type": "http", "url": "https://hooks.example.com/in", "method": "put"},
        {"type": "kafka", "provider_config": {"rest_url": "https://kafka.example", "cluster_id": "c", "topic": "t"}},
        {
            "type": "rabbitmq",
            "provider_config": {"url": "https://mq.example", "exchange": "x", "username": "u", "password": "p"},
        },
        {"type": "websocket", "url": "wss://ws.example/socket", "provider_config": {"channel_name": "orders.v1"}},
    ]
    for index, body in enumerate(bodies):
        response = post_json(api, "/v1/destinations", {"name": f"d{index}", **body})
        assert response.status_code == 201, response.content
    assert Destination.objects.get(type="http").method == "PUT"
    assert Destination.objects.get(type="rabbitmq").provider_config["vhost"] == "/"


def test_it_stores_every_writable_field(api):
    body = {
        **HTTP,
        "slug": "all-fields",
        "method": "PATCH",
        "headers": {"X-Team": "payments"},
        "timeout_ms": 5000,
        "retry_max_attempts": 10,
        "retry_backoff_type": "linear",
        "retry_intervals": [0, 60],
        "retry_jitter": True,
        "circuit_breaker_enabled": False,
        "circuit_breaker_threshold": 3,
        "circuit_breaker_reset_ms": 5000,
        "max_concurrency": 4,
        "rate_limit_per_second": 50,
        "status": "paused",
    }

    created = post_json(api, "/v1/destinations", body).json()

    for key, value in body.items():
        assert created[key] == value, key


def test_it_ignores_read_only_fields_sent_back(api):
    created = post_json(api, "/v1/destinations", HTTP).json()

    response = patch_json(api, f"/v1/destinations/{created['id']}", {**created, "name": "Renamed", "id": "dst_x"})

    assert response.status_code == 200, response.content
    assert response.json()["id"] == created["id"]
    assert response.json()["name"] == "Renamed"


def test_it_answers_with_and_without_a_trailing_slash(api, alice):
    destination = make_destination(alice.org)

    assert api.get("/v1/destinations/").status_code == 200
    assert api.get(f"/v1/destinations/{destination.id}/").status_code == 200
    assert api.get(f"/v1/destinations/{destination.id}/circuit/").status_code == 200
    assert post_json(api, "/v1/destinations/", HTTP).status_code == 201
    assert api.get("/v1/destinations/templates/").status_code == 200


@pytest.mark.parametrize("suffix", ["test", "dead-letters", "dead-letters/retry"])
def test_it_leaves_the_deliveries_routes_of_a_destination_alone(suffix):
    try:
        match = resolve(f"/v1/destinations/dst_{'a' * 32}/{suffix}")
    except Resolver404:
        return  # not routed (yet): certainly not swallowed
    assert getattr(match.func, "cls", None) is not DestinationViewSet


def test_it_does_not_take_templates_for_an_id(api):
    response = api.get("/v1/destinations/templates")

    assert response.status_code == 200
    assert "templates" in response.json()


# --- circuit, pause, delete ----------------------------------------------------------------------


def test_it_creates_a_closed_circuit_with_the_destination(api):
    created = post_json(api, "/v1/destinations", HTTP).json()

    circuit = CircuitState.objects.get(destination_id=created["id"])

    assert circuit.state == CircuitStateValue.CLOSED and circuit.failure_count == 0


def test_it_shows_an_open_circuit(api, alice):
    destination = make_destination(alice.org)
    opened = timezone.now() - timedelta(seconds=30)
    CircuitState.objects.filter(destination=destination).update(
        state=CircuitStateValue.OPEN, failure_count=5, opened_at=opened, last_failure_at=opened
    )

    body = api.get(f"/v1/destinations/{destination.id}/circuit").json()

    assert body["state"] == "open"
    assert body["failure_count"] == 5
    assert body["opened_at"].endswith("Z") and body["last_failure_at"].endswith("Z")


def test_it_resets_an_open_circuit_and_releases_the_held_deliveries(api, alice):
    destination = make_destination(alice.org)
    CircuitState.objects.filter(destination=destination).update(
        state=CircuitStateValue.OPEN, failure_count=7, opened_at=timezone.now(), probe_delivery_id="dlv_x"
    )
    event = make_event(alice.org)
    held = [make_delivery(event, destination, status=DeliveryStatus.HELD) for _ in range(3)]
    done = make_delivery(event, destination, status=DeliveryStatus.SUCCEEDED)

    response = api.post(f"/v1/destinations/{destination.id}/circuit/reset")

    assert response.status_code == 200
    assert response.json()["state"] == "closed" and response.json()["failure_count"] == 0
    circuit = CircuitState.objects.get(destination=destination)
    assert circuit.state == CircuitStateValue.CLOSED
    assert circuit.closed_at is not None and circuit.opened_at is None and circuit.probe_delivery_id is None
    statuses = set(Delivery.objects.filter(pk__in=[d.pk for d in held]).values_list("status", flat=True))
    assert statuses == {DeliveryStatus.PENDING}
    assert Delivery.objects.get(pk=done.pk).status == DeliveryStatus.SUCCEEDED


def test_it_resets_a_circuit_whose_row_is_missing(api, alice):
    destination = Destination.objects.create(organization=alice.org, name="old", slug="old", type="http", url="x")

    assert api.get(f"/v1/destinations/{destination.id}/circuit").json()["state"] == "closed"
    assert api.post(f"/v1/destinations/{destination.id}/circuit/reset").status_code == 200
    assert CircuitState.objects.filter(destination=destination).exists()


def test_it_releases_held_deliveries_when_a_paused_destination_resumes(api, alice):
    destination = make_destination(alice.org, status=DestinationStatus.PAUSED)
    event = make_event(alice.org)
    held = make_delivery(event, destination, status=DeliveryStatus.HELD)

    response = patch_json(api, f"/v1/destinations/{destination.id}", {"status": "active"})

    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert Delivery.objects.get(pk=held.pk).status == DeliveryStatus.PENDING


def test_it_keeps_held_deliveries_held_while_the_destination_stays_paused(api, alice):
    destination = make_destination(alice.org, status=DestinationStatus.PAUSED)
    held = make_delivery(make_event(alice.org), destination, status=DeliveryStatus.HELD)

    patch_json(api, f"/v1/destinations/{destination.id}", {"name": "still paused"})

    assert Delivery.objects.get(pk=held.pk).status == DeliveryStatus.HELD


def test_it_soft_deletes_and_cancels_pending_deliveries(api, alice):
    destination = make_destination(alice.org)
    event = make_event(alice.org)
    owed = [
        make_delivery(event, destination, status=status)
        for status in (DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD)
    ]
    done = make_delivery(event, destination, status=DeliveryStatus.SUCCEEDED)

    response = api.delete(f"/v1/destinations/{destination.id}")

    assert response.json() == {"success": True}
    row = Destination.all_objects.get(pk=destination.pk)
    assert row.deleted_at is not None
    assert not Destination.objects.filter(pk=destination.pk).exists()
    assert set(Delivery.objects.filter(pk__in=[d.pk for d in owed]).values_list("status", flat=True)) == {
        DeliveryStatus.CANCELLED
    }
    assert Delivery.objects.get(pk=done.pk).status == DeliveryStatus.SUCCEEDED
    # The history keeps its destination.
    assert Delivery.objects.filter(destination_id=destination.pk).count() == 4


# --- PATCH -----------------------------------------------------------------------------------


def test_it_merges_provider_config_on_patch(api):
    created = post_json(
        api,
        "/v1/destinations",
        {**HTTP, "provider_config": {"auth_type": "basic", "username": "u", "password": "pw12"}},
    ).json()

    response = patch_json(api, f"/v1/destinations/{created['id']}", {"provider_config": {"username": "v"}})

    assert response.status_code == 200, response.content
    config = response.json()["provider_config"]
    assert config["auth_type"] == "basic" and config["username"] == "v" and config["password"] == "****"


def test_it_removes_a_config_key_patched_to_null(api):
    created = post_json(
        api, "/v1/destinations", {**HTTP, "provider_config": {"auth_type": "bearer", "token": "tok-123456"}}
    ).json()

    response = patch_json(
        api, f"/v1/destinations/{created['id']}", {"provider_config": {"auth_type": "none", "token": None}}
    )

    assert response.status_code == 200, response.content
    assert "token" not in response.json()["provider_config"]


def test_it_changes_the_type_with_a_new_config(api):
    created = post_json(api, "/v1/destinations", HTTP).json()
    body = {
        "type": "kafka",
        "url": "",
        "provider_config": {"rest_url": "https://kafka.example", "cluster_id": "c", "topic": "t"},
    }

    response = patch_json(api, f"/v1/destinations/{created['id']}", body)

    assert response.status_code == 200, response.content
    assert response.json()["type"] == "kafka" and response.json()["url"] == ""


def test_it_turns_signing_off_with_null(api):
    created = post_json(api, "/v1/destinations", {**HTTP, "signing_config": {"secret": "s3cret-value"}}).json()

    response = patch_json(api, f"/v1/destinations/{created['id']}", {"signing_config": None})

    assert response.json()["signing_config"] is None
    assert Destination.objects.get(pk=created["id"]).signing_config is None


def test_it_renders_timestamps_in_utc_with_z(api):
    body = post_json(api, "/v1/destinations", HTTP).json()

    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    json.dumps(body)
