"""No silently ignored query parameter: every list answers 400 naming one it does not know."""

import pytest

from tests.factories import make_destination
from tests.intake.helpers import assert_error

LISTS = [
    "/v1/sources",
    "/v1/connections",
    "/v1/topics",
    "/v1/events",
    "/v1/destinations",
    "/v1/delivery-attempts",
]


@pytest.mark.parametrize("path", LISTS)
def test_every_list_names_an_unknown_parameter(api, path):
    body = assert_error(api.get(path, {"offset": "20", "colour": "red"}), 400, "offset", "colour")
    assert "cursor" in body["details"]["offset"][0]
    assert api.get(path, {"limit": "5"}).status_code == 200


def test_the_api_key_list_and_dead_letters_check_too(alice, api):
    session = alice.session_client()
    assert_error(session.get("/v1/auth/api-keys", {"q": "x"}), 400, "q")
    destination = make_destination(alice.org)
    assert_error(api.get(f"/v1/destinations/{destination.pk}/dead-letters", {"page": "2"}), 400, "page")


def test_documented_filters_are_accepted(api):
    assert api.get("/v1/connections", {"source_id": "src_x", "destination_id": "dst_x"}).status_code == 200
    assert api.get("/v1/delivery-attempts", {"is_dlq": "1", "status": "failed"}).status_code == 200
    events = {"status": "failed", "method": "POST", "verification_status": "verified", "dedup_status": "unique"}
    assert api.get("/v1/events", {**events, "search": "abc", "after": "2025-01-01T00:00:00Z"}).status_code == 200
