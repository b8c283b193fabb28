"""API keys (spec §1) and the authentication stack: keys, Bearer, sessions and CSRF."""

import re

from django.db import connection
from rest_framework.test import APIClient

from hookstream import services
from hookstream.models import APIKey
from tests.destinations.helpers import assert_error_body

KEY_RE = re.compile(r"^hs_live_[0-9a-f]{64}$")


def _key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def test_it_creates_a_key_shown_once_and_stores_only_its_hash(alice):
    session = alice.session_client()

    response = session.post("/v1/auth/api-keys", {"name": "deploy bot"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert KEY_RE.match(body["key"])
    assert body["key_prefix"] == body["key"][:12]
    assert body["name"] == "deploy bot" and body["revoked"] is False and body["request_count"] == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM hookstream_apikey WHERE id = %s", [body["id"]])
        row = " ".join(str(value) for value in cursor.fetchone())
    assert body["key"] not in row
    # The key works, and is never shown again.
    assert _key_client(body["key"]).get("/v1/destinations").status_code == 200
    listed = session.get("/v1/auth/api-keys").json()["api_keys"]
    assert body["key"] not in str(listed)
    assert all("key" not in item and "key_hash" not in item for item in listed)


def test_it_lists_keys_with_usage(alice):
    alice.client().get("/v1/destinations")
    alice.client().get("/v1/destinations")

    body = alice.session_client().get("/v1/auth/api-keys").json()

    assert body["cursor"] is None and body["has_more"] is False
    (key,) = body["api_keys"]
    assert key["id"] == alice.key.id and key["key_prefix"] == alice.raw_key[:12]
    assert key["request_count"] == 2 and key["last_used_at"].endswith("Z")
    assert set(key) >= {"id", "name", "key_prefix", "created_at", "last_used_at", "request_count", "revoked"}


def test_it_revokes_a_key_which_then_answers_401(alice):
    session = alice.session_client()

    response = session.delete(f"/v1/auth/api-keys/{alice.key.id}")

    assert response.status_code == 200 and response.json() == {"success": True}
    assert_error_body(alice.client().get("/v1/destinations"), 401)
    listed = session.get("/v1/auth/api-keys").json()["api_keys"]
    assert listed[0]["revoked"] is True and listed[0]["revoked_at"]
    # Revoking twice changes nothing.
    assert session.delete(f"/v1/auth/api-keys/{alice.key.id}").status_code == 200


def test_it_refuses_key_management_with_an_api_key(alice):
    client = alice.client()

    for response in (
        client.get("/v1/auth/api-keys"),
        client.post("/v1/auth/api-keys", {"name": "escalation"}, format="json"),
        client.delete(f"/v1/auth/api-keys/{alice.key.id}"),
    ):
        assert_error_body(response, 403)
    assert APIKey.objects.filter(organization=alice.org).count() == 1
    assert APIKey.objects.get(pk=alice.key.pk).revoked_at is None


def test_it_answers_401_to_key_management_without_credentials(db, client):
    assert_error_body(client.get("/v1/auth/api-keys"), 401)


def test_it_hides_another_organizations_keys(alice, bob):
    session = bob.session_client()

    assert [k["id"] for k in session.get("/v1/auth/api-keys").json()["api_keys"]] == [bob.key.id]
    assert_error_body(session.delete(f"/v1/auth/api-keys/{alice.key.id}"), 404)
    assert APIKey.objects.get(pk=alice.key.pk).revoked_at is None


def test_it_needs_a_name(alice):
    response = alice.session_client().post("/v1/auth/api-keys", {"name": " "}, format="json")

    assert_error_body(response, 400, "name")


def test_it_needs_the_csrf_token_to_create_a_key_with_a_session(alice):
    response = alice.session_client(enforce_csrf=True).post("/v1/auth/api-keys", {"name": "x"}, format="json")

    body = assert_error_body(response, 403)
    assert "CSRF" in body["error"]


# --- authentication on the API --------------------------------------------------------------------


def test_it_answers_401_without_a_key(db, client):
    response = client.get("/v1/destinations")

    assert_error_body(response, 401)


def test_it_answers_401_for_an_unknown_or_malformed_key(alice):
    for raw in ("hs_live_" + "0" * 64, "sk_test_nope", alice.raw_key[:-1]):
        assert_error_body(_key_client(raw).get("/v1/destinations"), 401)


def test_it_answers_401_for_a_revoked_key(alice):
    services.api_key_revoke(key=alice.key)

    assert_error_body(alice.client().get("/v1/destinations"), 401)

    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.raw_key}")
    assert_error_body(bearer.get("/v1/destinations"), 401)


def test_it_refuses_a_session_post_without_the_csrf_token(alice):
    session = alice.session_client(enforce_csrf=True)
    body = {"name": "x", "type": "http", "url": "https://hooks.example.com/in"}

    response = session.post("/v1/destinations", body, format="json")

    assert_error_body(response, 403)
    assert session.get("/v1/destinations").status_code == 200


def test_it_accepts_a_session_post_with_the_csrf_token(alice):
    session = alice.session_client(enforce_csrf=True)
    session.get("/admin/login/")  # any Django page that sets the csrftoken cookie
    token = session.cookies["csrftoken"].value
    body = {"name": "x", "type": "http", "url": "https://hooks.example.com/in"}

    response = session.post("/v1/destinations", body, format="json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201, response.content


def test_it_does_not_need_csrf_with_an_api_key(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_X_API_KEY=alice.raw_key)

    response = client.post("/v1/destinations", {"name": "x", "type": "http", "url": "https://a.example"}, format="json")

    assert response.status_code == 201


def test_it_answers_403_to_a_session_without_an_organization(db):
    user = services.user_create(username="loner", password="loner-password-123")
    client = APIClient()
    client.force_login(user)

    assert_error_body(client.get("/v1/destinations"), 403)
