"""Every example of spec/destinations-page.txt, as a request and its response.

The requests are the page's curl commands (same headers, same JSON text); each response
must carry every field the page shows with the page's value (ids and timestamps by shape).
"""

import json

import pytest
from rest_framework.test import APIClient

from deliveries.models import Delivery
from tests.destinations.helpers import assert_matches_example, patch_json, post_json
from tests.factories import make_event

CREATE_BODY = (
    '{ "name": "Backend API", "slug": "backend-api", "type": "http", "url": "https://api.example.com/webhooks", '
    '"headers": { "X-Custom": "value" }, "retry_max_attempts": 5, "retry_backoff_type": "exponential", '
    '"retry_intervals": [30, 300, 1800, 7200, 86400] }'
)

CREATE_RESPONSE = json.loads(
    '{ "id": "dst_b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", "name": "Backend API", "slug": "backend-api", "type": "http", '
    '"url": "https://api.example.com/webhooks", "retry_max_attempts": 5, "retry_backoff_type": "exponential", '
    '"retry_intervals": [30, 300, 1800, 7200, 86400], "created_at": "2026-03-01T12:00:00Z" }'
)

LIST_RESPONSE = json.loads(
    '{ "destinations": [ { "id": "dst_b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", "name": "Backend API", "type": "http", '
    '"url": "https://api.example.com/webhooks", "retry_max_attempts": 5, "retry_backoff_type": "exponential", '
    '"retry_intervals": [30, 300, 1800, 7200, 86400], "created_at": "2026-02-28T10:00:00Z" } ], '
    '"cursor": null, "has_more": false }'
)

RETRIEVE_RESPONSE = json.loads(
    '{ "id": "dst_b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", "name": "Backend API", "type": "http", '
    '"url": "https://api.example.com/webhooks", "retry_max_attempts": 5, "retry_backoff_type": "exponential", '
    '"retry_intervals": [30, 300, 1800, 7200, 86400], "delivery_count": 892, "created_at": "2026-02-28T10:00:00Z", '
    '"updated_at": "2026-03-01T08:30:00Z" }'
)

PATCH_BODY = '{"name": "Backend API v2", "retry_max_attempts": 10}'
PATCH_RESPONSE = json.loads(
    '{ "id": "dst_b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", "name": "Backend API v2", "type": "http", '
    '"retry_max_attempts": 10, "updated_at": "2026-03-01T15:00:00Z" }'
)

TEMPLATES_RESPONSE = json.loads(
    '{ "templates": [ { "id": "slack", "name": "Slack", "type": "http", "description": "Send webhook events to a '
    'Slack channel via Incoming Webhook URL.", "config_template": { "url": "" } }, { "id": "discord", "name": '
    '"Discord", "type": "http", "description": "Post webhook events to a Discord channel webhook.", '
    '"config_template": { "url": "" } } ] }'
)

CIRCUIT_RESPONSE = json.loads(
    '{ "destination_id": "dst_b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", "state": "closed", "failure_count": 0, '
    '"last_failure_at": null, "opened_at": null }'
)
RESET_RESPONSE = json.loads(
    '{ "destination_id": "dst_b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", "state": "closed", "failure_count": 0 }'
)


@pytest.fixture
def created(api):
    response = post_json(api, "/v1/destinations", CREATE_BODY)
    assert response.status_code == 201, response.content
    return response.json()


def test_it_creates_a_destination_as_the_page_shows(api):
    response = post_json(api, "/v1/destinations", CREATE_BODY)

    assert response.status_code == 201
    assert_matches_example(response.json(), CREATE_RESPONSE)
    assert response.json()["headers"] == {"X-Custom": "value"}


def test_it_lists_destinations_as_the_page_shows(api, created):
    response = api.get("/v1/destinations")

    assert response.status_code == 200
    assert_matches_example(response.json(), LIST_RESPONSE)
    assert response.json()["destinations"][0]["id"] == created["id"]


def test_it_retrieves_a_destination_with_its_real_delivery_count(api, alice, created):
    event = make_event(alice.org)
    Delivery.objects.bulk_create(
        Delivery(organization=alice.org, event=event, destination_id=created["id"]) for _ in range(892)
    )

    response = api.get(f"/v1/destinations/{created['id']}")

    assert response.status_code == 200
    assert_matches_example(response.json(), RETRIEVE_RESPONSE)


def test_it_updates_a_destination_as_the_page_shows(api, created):
    response = patch_json(api, f"/v1/destinations/{created['id']}", PATCH_BODY)

    assert response.status_code == 200
    assert_matches_example(response.json(), PATCH_RESPONSE)
    assert response.json()["id"] == created["id"]
    assert response.json()["updated_at"] >= created["updated_at"]
    # The fields the PATCH did not name are kept.
    assert response.json()["url"] == "https://api.example.com/webhooks"


def test_it_deletes_a_destination_as_the_page_shows(api, created):
    response = api.delete(f"/v1/destinations/{created['id']}")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert api.get(f"/v1/destinations/{created['id']}").status_code == 404


def test_it_lists_templates_as_the_page_shows(api):
    response = api.get("/v1/destinations/templates")

    assert response.status_code == 200
    by_id = {template["id"]: template for template in response.json()["templates"]}
    for example in TEMPLATES_RESPONSE["templates"]:
        assert_matches_example(by_id[example["id"]], example)


def test_it_shows_the_circuit_as_the_page_shows(api, created):
    response = api.get(f"/v1/destinations/{created['id']}/circuit")

    assert response.status_code == 200
    assert_matches_example(response.json(), CIRCUIT_RESPONSE)
    assert response.json()["destination_id"] == created["id"]


def test_it_resets_the_circuit_as_the_page_shows(api, created):
    response = api.post(f"/v1/destinations/{created['id']}/circuit/reset")

    assert response.status_code == 200
    assert_matches_example(response.json(), RESET_RESPONSE)
    assert response.json()["destination_id"] == created["id"]


def test_it_accepts_the_bearer_spelling_of_the_key(alice, created):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.raw_key}")

    response = client.get("/v1/destinations")

    assert response.status_code == 200
    assert response.json()["destinations"][0]["id"] == created["id"]
