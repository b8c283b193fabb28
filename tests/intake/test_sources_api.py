"""The Sources API: CRUD, validation, and one organization's sources hidden from another."""

import pytest

from intake.models import Source
from tests.factories import make_source
from tests.intake.helpers import assert_error, patch_json, post_json


def test_it_creates_lists_updates_and_deletes_a_source(alice, api):
    response = post_json(
        api,
        "/v1/sources",
        {
            "name": "Stripe",
            "description": "payments",
            "dedup_enabled": True,
            "dedup_strategy": "header_field",
            "dedup_field": "Stripe-Event-Id",
            "ip_allowlist": ["3.18.12.63", "2001:db8::/32"],
        },
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["slug"] == "stripe"
    assert created["ingest_url"] == f"http://testserver/v1/ingest/{created['id']}"  # the request's own host
    assert created["status"] == "active" and created["event_count"] == 0 and created["last_event_at"] is None
    assert created["verification_type"] is None and created["verification_secret"] is None

    listed = api.get("/v1/sources").json()
    assert [s["id"] for s in listed["sources"]] == [created["id"]] and listed["has_more"] is False
    assert api.get(f"/v1/sources/{created['id']}/").json()["name"] == "Stripe"

    updated = patch_json(api, f"/v1/sources/{created['id']}", {"status": "paused", "ip_allowlist": []})
    assert updated.status_code == 200
    assert updated.json()["status"] == "paused" and updated.json()["ip_allowlist"] == []
    assert updated.json()["dedup_field"] == "Stripe-Event-Id"

    assert api.delete(f"/v1/sources/{created['id']}").json() == {"success": True}
    assert Source.objects.count() == 0


def test_it_answers_409_for_a_slug_taken(alice, api):
    make_source(alice.org, slug="github")
    assert_error(post_json(api, "/v1/sources", {"name": "GitHub", "slug": "github"}), 409)
    # Without a slug a free one is derived.
    assert post_json(api, "/v1/sources", {"name": "GitHub"}).json()["slug"] == "github-2"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x", "slug": "Not A Slug"}, "slug"),
        ({"name": "x", "verification_type": "md5"}, "verification_type"),
        ({"name": "x", "verification_type": "hmac_sha256"}, "verification_secret"),
        (
            {"name": "x", "verification_type": "standard_webhooks", "verification_secret": "whsec_%%%"},
            "verification_secret",
        ),
        ({"name": "x", "verification_header": "bad header"}, "verification_header"),
        ({"name": "x", "dedup_enabled": True}, "dedup_strategy"),
        ({"name": "x", "dedup_enabled": True, "dedup_strategy": "body_field"}, "dedup_field"),
        ({"name": "x", "dedup_enabled": "yes"}, "dedup_enabled"),
        ({"name": "x", "dedup_window_seconds": 0}, "dedup_window_seconds"),
        ({"name": "x", "dedup_window_seconds": "60"}, "dedup_window_seconds"),
        ({"name": "x", "ip_allowlist": ["10.0.0.0/33"]}, "ip_allowlist"),
        ({"name": "x", "ip_denylist": ["not-an-ip"]}, "ip_denylist"),
        ({"name": "x", "ip_denylist": "10.0.0.1"}, "ip_denylist"),
        ({"name": "x", "status": "deleted"}, "status"),
        ({"name": "x", "verification_secrt": "typo"}, "verification_secrt"),
    ],
)
def test_it_refuses_an_invalid_source_with_a_400_naming_the_field(api, body, field):
    assert_error(post_json(api, "/v1/sources", body), 400, field)
    assert Source.objects.count() == 0


def test_it_refuses_a_body_that_is_not_an_object(api):
    assert_error(post_json(api, "/v1/sources", "[1, 2]"), 400)
    assert_error(api.post("/v1/sources", data="{nope", content_type="application/json"), 400)


def test_it_checks_a_patch_against_the_stored_source(alice, api):
    source = make_source(alice.org)
    response = patch_json(api, f"/v1/sources/{source.pk}", {"verification_type": "hmac_sha1"})
    assert_error(response, 400, "verification_secret")
    response = patch_json(api, f"/v1/sources/{source.pk}", {"dedup_enabled": True})
    assert_error(response, 400, "dedup_strategy")


def test_it_hides_another_organizations_sources(alice, bob):
    source = make_source(alice.org)
    api = bob.client()
    assert api.get("/v1/sources").json()["sources"] == []
    assert_error(api.get(f"/v1/sources/{source.pk}"), 404)
    assert_error(patch_json(api, f"/v1/sources/{source.pk}", {"name": "mine"}), 404)
    assert_error(api.delete(f"/v1/sources/{source.pk}"), 404)
    assert Source.objects.get().name == source.name


def test_it_needs_credentials(db, client):
    assert client.get("/v1/sources").status_code == 401
