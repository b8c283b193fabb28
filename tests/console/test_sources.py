"""Console: sources — list with ingest URLs, create/edit through the service, masked secrets,
delete with confirmation, isolation, CSRF and escaping."""

import pytest
from django.test import Client

from hookstream import crypto
from intake.models import Connection, Source, Topic
from tests.console.test_events import XSS, XSS_ESCAPED, client_for
from tests.factories import make_destination, make_source

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def valid(**fields) -> dict:
    data = {"name": "Stripe", "status": "active", "dedup_window_seconds": "300"}
    data.update(fields)
    return data


def test_the_list_shows_each_ingest_url_in_a_copyable_field(alice, settings):
    settings.HOOKSTREAM_PUBLIC_URL = "https://hooks.example.com"
    source = make_source(alice.org, name="Stripe")
    html = client_for(alice).get("/sources/").content.decode()
    url = f"https://hooks.example.com/v1/ingest/{source.pk}"
    assert f'value="{url}" readonly' in html
    assert f'data-copy="#ingest-url-{source.pk}"' in html


def test_it_creates_a_source_through_the_service(alice):
    response = client_for(alice).post(
        "/sources/new/",
        valid(
            verification_type="standard_webhooks",
            verification_secret=SECRET,
            dedup_enabled="on",
            dedup_strategy="header_field",
            dedup_field="Idempotency-Key",
            ip_allowlist="10.0.0.0/8\n192.168.1.1, 2001:db8::/32",
        ),
    )
    source = Source.objects.get(organization=alice.org)
    assert response.status_code == 302 and response["Location"] == f"/sources/{source.pk}/"
    assert source.slug == "stripe"
    assert source.verification_type == "standard_webhooks"
    assert crypto.is_encrypted(source.verification_secret) and crypto.decrypt(source.verification_secret) == SECRET
    assert source.dedup_enabled and source.dedup_strategy == "header_field"
    assert source.ip_allowlist == ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32"]


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"name": ""}, "name", "This field is required."),
        ({"slug": "Not A Slug"}, "slug", "Must match ^[a-z0-9-]+$"),
        ({"verification_type": "hmac_sha256"}, "verification_secret", "Required when verification_type"),
        ({"verification_type": "standard_webhooks", "verification_secret": "short"}, "verification_secret", ""),
        ({"dedup_enabled": "on"}, "dedup_strategy", "Required when dedup_enabled"),
        ({"dedup_window_seconds": "0"}, "dedup_window_seconds", "greater than or equal to 1"),
        ({"dedup_window_seconds": "soon"}, "dedup_window_seconds", "Enter a whole number."),
        ({"ip_denylist": "not-an-address"}, "ip_denylist", "not-an-address"),
        ({"verification_header": "bad header"}, "verification_header", "is not a valid header name"),
        ({"ip_allowlist": "10.0.0.1\n" + "1" * 70}, "ip_allowlist", "Entry 2: Ensure this field has no more than 64"),
    ],
)
def test_bad_input_is_shown_beside_the_field(alice, fields, field, message):
    response = client_for(alice).post("/sources/new/", valid(**fields))
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert message in " ".join(form.errors[field])
    html = response.content.decode()
    assert 'class="field has-error' in html
    assert not Source.objects.filter(organization=alice.org).exists()


def test_a_taken_slug_is_a_field_error(alice):
    make_source(alice.org, name="Stripe", slug="stripe")
    response = client_for(alice).post("/sources/new/", valid(slug="stripe"))
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["slug"][0]
    assert Source.objects.filter(organization=alice.org).count() == 1


def test_editing_keeps_the_secret_unless_a_new_one_is_typed(alice):
    source = make_source(alice.org, name="GitHub", verification_type="hmac_sha256")
    Source.objects.filter(pk=source.pk).update(verification_secret=crypto.encrypt("gh-secret-1234"))
    client = client_for(alice)

    page = client.get(f"/sources/{source.pk}/edit/").content.decode()
    assert "gh-secret-1234" not in page and "****1234" in page
    assert 'name="verification_secret"' in page and 'type="password"' in page

    response = client.post(
        f"/sources/{source.pk}/edit/",
        valid(name="GitHub org", slug=source.slug, verification_type="hmac_sha256", verification_prefix="sha256="),
    )
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.name == "GitHub org" and source.verification_prefix == "sha256="
    assert crypto.decrypt(source.verification_secret) == "gh-secret-1234"

    client.post(
        f"/sources/{source.pk}/edit/",
        valid(name="GitHub org", slug=source.slug, verification_type="hmac_sha256", verification_secret="new-one-9876"),
    )
    source.refresh_from_db()
    assert crypto.decrypt(source.verification_secret) == "new-one-9876"


def test_no_secret_is_ever_rendered(alice):
    source = make_source(alice.org, name="Signed", verification_type="standard_webhooks")
    Source.objects.filter(pk=source.pk).update(verification_secret=crypto.encrypt(SECRET))
    client = client_for(alice)
    for path in ("/sources/", f"/sources/{source.pk}/", f"/sources/{source.pk}/edit/"):
        html = client.get(path).content.decode()
        assert SECRET not in html and "enc:v1:" not in html, path
    # A refused edit does not echo the typed secret back either.
    response = client.post(
        f"/sources/{source.pk}/edit/",
        valid(name="", verification_type="standard_webhooks", verification_secret="whsec_typed-but-refused"),
    )
    assert "whsec_typed-but-refused" not in response.content.decode()


def test_the_detail_shows_the_sources_connections(alice):
    source = make_source(alice.org, name="Shopify")
    destination = make_destination(alice.org, name="Fulfilment")
    Connection.objects.create(organization=alice.org, source=source, destination=destination, name="orders")
    html = client_for(alice).get(f"/sources/{source.pk}/").content.decode()
    assert "Fulfilment" in html and "orders" in html
    assert 'id="ingest-url"' in html


def test_delete_asks_first_then_deletes_with_its_connections(alice):
    source = make_source(alice.org, name="Old")
    destination = make_destination(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=destination)
    client = client_for(alice)
    confirm = client.get(f"/sources/{source.pk}/delete/")
    assert confirm.status_code == 200 and "1 connection will be deleted" in confirm.content.decode()
    assert f'href="/sources/{source.pk}/"' in confirm.content.decode()  # Cancel goes back to the source
    assert Source.objects.filter(pk=source.pk).exists()

    response = client.post(f"/sources/{source.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/sources/"
    assert not Source.objects.filter(pk=source.pk).exists()
    assert not Connection.objects.filter(source_id=source.pk).exists()


def test_every_post_enforces_csrf(alice):
    source = make_source(alice.org, name="Kept")
    client = client_for(alice, enforce_csrf=True)
    assert client.post("/sources/new/", valid(name="Sneaky")).status_code == 403
    assert client.post(f"/sources/{source.pk}/edit/", valid(name="Changed")).status_code == 403
    assert client.post(f"/sources/{source.pk}/delete/").status_code == 403
    assert list(Source.objects.filter(organization=alice.org).values_list("name", flat=True)) == ["Kept"]


def test_another_organizations_source_is_a_404_and_nothing_changes(alice, bob):
    source = make_source(alice.org, name="Alice's")
    client = client_for(bob)
    for path in (f"/sources/{source.pk}/", f"/sources/{source.pk}/edit/", f"/sources/{source.pk}/delete/"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/sources/{source.pk}/edit/", valid(name="Bob's now")).status_code == 404
    assert client.post(f"/sources/{source.pk}/delete/").status_code == 404
    assert client.post(f"/sources/{source.pk}/").status_code == 404
    source.refresh_from_db()
    assert source.name == "Alice's"
    assert source.pk not in client.get("/sources/").content.decode()


def test_user_values_are_escaped(alice):
    source = make_source(alice.org, name=XSS, description=XSS, dedup_field=XSS, slug="xss")
    client = client_for(alice)
    for path in ("/sources/", f"/sources/{source.pk}/", f"/sources/{source.pk}/edit/", f"/sources/{source.pk}/delete/"):
        html = client.get(path).content.decode()
        assert XSS not in html, path
        assert XSS_ESCAPED in html, path


def test_pages_need_a_login(db):
    assert Client().get("/sources/").status_code == 302


def test_a_generated_secret_is_shown_once_then_only_masked(alice):
    client = client_for(alice)
    response = client.post("/sources/new/", valid(verification_type="standard_webhooks", generate_secret="on"))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = response.context["secret"]
    source = Source.objects.get(organization=alice.org)
    assert secret.startswith("whsec_") and crypto.decrypt(source.verification_secret) == secret
    html = response.content.decode()
    assert 'class="secret-once"' in html and f'value="{secret}"' in html

    for path in ("/sources/", f"/sources/{source.pk}/", f"/sources/{source.pk}/edit/"):
        page = client.get(path).content.decode()
        assert secret not in page and secret[6:] not in page, path
    assert f"****{secret[-4:]}" in client.get(f"/sources/{source.pk}/").content.decode()
    assert secret not in str(dict(client.session))

    # Editing can rotate it the same way (an HMAC secret this time).
    rotated = client.post(
        f"/sources/{source.pk}/edit/", valid(slug=source.slug, verification_type="hmac_sha256", generate_secret="on")
    )
    new_secret = rotated.context["secret"]
    source.refresh_from_db()
    assert len(new_secret) == 64 and crypto.decrypt(source.verification_secret) == new_secret


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"generate_secret": "on"}, "Choose a verification type first."),
        (
            {"generate_secret": "on", "verification_type": "hmac_sha1", "verification_secret": "typed"},
            "Type a secret or generate one, not both.",
        ),
    ],
)
def test_generating_a_secret_needs_a_type_and_no_typed_secret(alice, fields, message):
    response = client_for(alice).post("/sources/new/", valid(**fields))
    assert response.status_code == 200
    assert response.context["form"].errors["generate_secret"] == [message]
    assert not Source.objects.filter(organization=alice.org).exists()


def test_no_form_answers_500_for_nul_bytes_or_oversized_values(alice):
    topic = Topic.objects.create(organization=alice.org, name="T", slug="t")
    source = make_source(alice.org)
    nasty = {
        name: "a\x00b"
        for name in (
            "name",
            "slug",
            "description",
            "verification_header",
            "dedup_field",
            "ip_allowlist",
            "filter_rules",
            "transform_expression",
            "source_id",
            "destination_id",
        )
    }
    huge = dict.fromkeys(nasty, "x" * 100_000)
    client = client_for(alice)
    client.raise_request_exception = False
    for path in (
        "/sources/new/",
        f"/sources/{source.pk}/edit/",
        "/connections/new/",
        "/topics/new/",
        f"/topics/{topic.pk}/subscriptions/",
        "/api-keys/new/",
    ):
        for data in (nasty, huge):
            response = client.post(path, data)
            assert response.status_code == 200, (path, response.status_code)
            assert response.context["form"].errors, path
    odd = {**valid(), "filter_rules": '["\\u0000"]', "dedup_window_seconds": "9" * 40}
    for path in ("/sources/new/", "/connections/new/"):
        assert client.post(path, odd).context["form"].errors, path
