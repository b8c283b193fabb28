"""The console's session login, CSRF and organization switcher."""

from django.test import Client

from hookstream import services as tenancy
from hookstream.api.authentication import SESSION_ORG_KEY


def test_pages_need_a_login(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_login_with_the_form_then_dashboard(alice):
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    bad = client.post("/login/", {"username": "alice", "password": "nope"})
    assert bad.status_code == 200 and b"Please enter a correct username and password" in bad.content
    good = client.post("/login/", {"username": "alice", "password": "alice-password-123"})
    assert good.status_code == 302 and good["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert b"Alice" in dashboard.content


def test_login_and_logout_enforce_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/login/", {"username": "alice", "password": "alice-password-123"}).status_code == 403
    client.force_login(alice.user)
    assert client.post("/logout/").status_code == 403
    assert client.get("/").status_code == 200  # still logged in


def test_switch_organization_only_to_ones_you_belong_to(alice, bob):
    second = tenancy.organization_create(name="Alice Labs", slug="alice-labs", owner=alice.user)
    client = Client()
    client.force_login(alice.user)
    client.get("/")
    assert client.session[SESSION_ORG_KEY] == alice.org.id

    response = client.post("/organization/switch/", {"organization_id": second.id, "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session[SESSION_ORG_KEY] == second.id
    assert b"Alice Labs" in client.get("/").content

    refused = client.post("/organization/switch/", {"organization_id": bob.org.id}, follow=True)
    assert b"You are not a member of that organization." in refused.content
    assert client.session[SESSION_ORG_KEY] == second.id


def test_switch_ignores_an_offsite_next(alice):
    client = Client()
    client.force_login(alice.user)
    response = client.post("/organization/switch/", {"organization_id": alice.org.id, "next": "https://evil.example/"})
    assert response["Location"] == "/"
    assert client.get("/organization/switch/").status_code == 405


def test_user_without_organization_sees_an_explanation(db):
    user = tenancy.user_create(username="loner", password="loner-password-123")
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 403
    assert b"No organization yet" in response.content


def test_user_values_are_escaped_in_the_layout(db):
    org = tenancy.organization_create(name="<script>alert(1)</script>", slug="xss")
    user = tenancy.user_create(username="xss", password="xss-password-123", organization=org)
    client = Client()
    client.force_login(user)
    body = client.get("/").content
    assert b"<script>alert(1)</script>" not in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body
