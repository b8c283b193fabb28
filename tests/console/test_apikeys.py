"""Console: API keys — the key shown once on creation and never again, revoke with
confirmation, isolation, CSRF and escaping."""

from django.test import Client

from hookstream.models import APIKey, hash_key
from tests.console.test_events import XSS, XSS_ESCAPED, client_for


def test_a_new_key_is_shown_once_then_only_its_prefix(alice):
    client = client_for(alice)
    response = client.post("/api-keys/new/", {"name": "deploy bot"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    key = APIKey.objects.get(organization=alice.org, name="deploy bot")
    assert key.key_hash == hash_key(raw) and key.created_by == alice.user
    html = response.content.decode()
    assert 'class="secret-once"' in html and f'value="{raw}"' in html and 'data-copy="#raw-key"' in html

    # Nowhere else, ever: not in the list, not in the session, not on any page after.
    for path in ("/api-keys/", "/api-keys/new/", f"/api-keys/{key.pk}/revoke/"):
        page = client.get(path).content.decode()
        assert raw not in page and raw[12:] not in page, path
    assert raw not in str(dict(client.session))
    assert f"{key.key_prefix}…" in client.get("/api-keys/").content.decode()

    # The key works against the API.
    assert Client(HTTP_X_API_KEY=raw).get("/v1/events").status_code == 200


def test_a_key_needs_a_name(alice):
    response = client_for(alice).post("/api-keys/new/", {"name": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["This field is required."]
    assert "hs_live_" not in response.content.decode()
    assert APIKey.objects.filter(organization=alice.org).count() == 1  # the fixture's


def test_revoke_asks_first_then_the_key_stops_working(alice):
    client = client_for(alice)
    confirm = client.get(f"/api-keys/{alice.key.pk}/revoke/")
    assert confirm.status_code == 200 and "Revoke key" in confirm.content.decode()
    alice.key.refresh_from_db()
    assert not alice.key.revoked

    response = client.post(f"/api-keys/{alice.key.pk}/revoke/", follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Revoked the key" in html and "badge revoked" in html
    alice.key.refresh_from_db()
    assert alice.key.revoked
    assert Client(HTTP_X_API_KEY=alice.raw_key).get("/v1/events").status_code == 401

    again = client.get(f"/api-keys/{alice.key.pk}/revoke/", follow=True)
    assert "already revoked" in again.content.decode()


def test_every_post_enforces_csrf(alice):
    client = client_for(alice, enforce_csrf=True)
    assert client.post("/api-keys/new/", {"name": "sneaky"}).status_code == 403
    assert client.post(f"/api-keys/{alice.key.pk}/revoke/").status_code == 403
    assert list(APIKey.objects.filter(organization=alice.org).values_list("name", "revoked_at")) == [
        ("alice key", None)
    ]


def test_another_organizations_key_is_a_404_and_stays_active(alice, bob):
    client = client_for(bob)
    assert client.get(f"/api-keys/{alice.key.pk}/revoke/").status_code == 404
    assert client.post(f"/api-keys/{alice.key.pk}/revoke/").status_code == 404
    alice.key.refresh_from_db()
    assert not alice.key.revoked
    listed = client.get("/api-keys/").content.decode()
    assert alice.key.key_prefix not in listed and bob.key.key_prefix in listed


def test_user_values_are_escaped(alice):
    client = client_for(alice)
    created = client.post("/api-keys/new/", {"name": XSS}).content.decode()
    key = APIKey.objects.get(name=XSS)
    for html in (
        created,
        client.get("/api-keys/").content.decode(),
        client.get(f"/api-keys/{key.pk}/revoke/").content.decode(),
    ):
        assert XSS not in html and XSS_ESCAPED in html
