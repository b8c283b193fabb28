"""Destination pages of the console: list, detail, forms, actions, isolation, escaping, secrets."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus, ReplayJob
from destinations import selectors, services
from destinations.models import CircuitState, CircuitStateValue, Destination, DestinationStatus
from tests.factories import make_delivery, make_destination, make_event

SECRET = "tok-very-secret-value-9876"
SIGNING_SECRET = "sign-this-secret-5432"


def _client(tenant, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(tenant.user)
    return client


def _http_destination(org, **data):
    body = {
        "name": "Backend API",
        "type": "http",
        "url": "https://api.example.com/hooks",
        "headers": {"X-Custom": "plain-value", "Authorization": "Bearer header-secret-1111"},
        "provider_config": {"auth_type": "bearer", "token": SECRET},
        "signing_config": {"secret": SIGNING_SECRET},
        **data,
    }
    return services.destination_create(organization=org, data=body)


def _dead_letter(destination):
    event = make_event(destination.organization)
    delivery = make_delivery(event, destination, status=DeliveryStatus.DEAD, attempt_count=2, last_error="HTTP 500")
    return DeadLetter.objects.create(
        organization=destination.organization,
        delivery=delivery,
        destination=destination,
        event=event,
        reason="retries_exhausted",
        last_error="HTTP 500",
    )


def _form_data(**overrides) -> dict:
    data = {
        "name": "Orders webhook",
        "slug": "",
        "status": "active",
        "url": "https://orders.example.com/in",
        "method": "POST",
        "headers": "X-Team: orders",
        "timeout_ms": "5000",
        "retry_max_attempts": "3",
        "retry_backoff_type": "fixed",
        "retry_intervals": "10, 60",
        "circuit_breaker_enabled": "on",
        "circuit_breaker_threshold": "4",
        "circuit_breaker_reset_ms": "30000",
        "max_concurrency": "",
        "rate_limit_per_second": "",
        "cfg_auth_type": "none",
        "cfg_api_key_header": "X-API-Key",
        "signing_mode": "none",
        "signing_algorithm": "sha256",
        "signing_header": "X-hookstream-Signature",
        "signing_prefix": "sha256=",
    }
    data.update(overrides)
    return data


# --- pages render ------------------------------------------------------------------------------


def test_it_lists_destinations_with_status_circuit_and_last_delivery(alice):
    quiet = make_destination(alice.org, name="Quiet one")
    busy = make_destination(alice.org, name="Busy one", status=DestinationStatus.PAUSED)
    CircuitState.objects.filter(destination=busy).update(state=CircuitStateValue.OPEN, failure_count=5)
    delivery = make_delivery(make_event(alice.org), busy)
    DeliveryAttempt.objects.create(
        organization=alice.org,
        delivery=delivery,
        event=delivery.event,
        destination=busy,
        attempt_number=1,
        status="failed",
        response_status=503,
    )
    page = _client(alice).get(reverse("console:destination-list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Quiet one" in html and "Busy one" in html
    assert 'data-circuit="open"' in html and 'class="badge paused"' in html
    assert "failed 503" in html and "never" in html
    assert reverse("console:destination-detail", args=[quiet.pk]) in html
    assert reverse("console:destination-template-list") in html and reverse("console:destination-create") in html


def test_the_list_is_paginated(alice):
    for n in range(27):
        make_destination(alice.org, name=f"Dest {n:02d}")
    client = _client(alice)
    first = client.get(reverse("console:destination-list"))
    older = first.context["page"].older_query
    assert "Older" in first.content.decode() and older and "cursor=" in older
    assert "Dest 26" in first.content.decode() and "Dest 00" not in first.content.decode()
    second = client.get(reverse("console:destination-list") + f"?{older}").content.decode()
    assert "Dest 00" in second and "Dest 26" not in second and "Newest" in second


def test_detail_shows_masked_config_retry_policy_circuit_attempts_and_dead_letters(alice):
    destination = _http_destination(alice.org)
    dead = _dead_letter(destination)
    DeliveryAttempt.objects.create(
        organization=alice.org,
        delivery=dead.delivery,
        event=dead.event,
        destination=destination,
        attempt_number=2,
        status="failed",
        response_status=500,
        duration_ms=42,
        error="HTTP 500 from the receiver",
        is_dlq=True,
    )
    page = _client(alice).get(reverse("console:destination-detail", args=[destination.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "****9876" in html and "****5432" in html  # masked, as the API shows them
    assert SECRET not in html and SIGNING_SECRET not in html and "header-secret-1111" not in html
    assert "plain-value" in html
    assert "30, 300, 1800, 7200, 86400" in html
    assert 'data-circuit="closed"' in html
    assert "42 ms" in html and "HTTP 500 from the receiver" in html
    assert reverse("console:destination-dead-letter-retry", args=[destination.pk, dead.pk]) in html
    assert reverse("console:destination-dead-letters-retry", args=[destination.pk]) in html
    assert reverse("console:destination-circuit-reset", args=[destination.pk]) in html
    live = _client(alice).get(reverse("console:destination-live", args=[destination.pk]))
    assert live.status_code == 200 and b"HTTP 500 from the receiver" in live.content and b"<html" not in live.content


def test_the_recent_attempts_are_a_live_tail_of_the_destinations_stream_channel(alice, settings):
    settings.HOOKSTREAM_STREAM_URL = ""
    settings.HOOKSTREAM_STREAM_PORT = 8101
    destination = make_destination(alice.org)
    client = _client(alice)
    empty = client.get(reverse("console:destination-detail", args=[destination.pk])).content.decode()
    assert 'class="empty-row"' in empty and "No attempts yet" in empty
    attempt = DeliveryAttempt.objects.create(
        organization=alice.org,
        delivery=make_delivery(make_event(alice.org), destination),
        event=make_event(alice.org),
        destination=destination,
        attempt_number=1,
        status="success",
        response_status=200,
        duration_ms=12,
    )
    for name in ("destination-detail", "destination-live"):
        html = client.get(reverse(f"console:{name}", args=[destination.pk])).content.decode()
        tail = html.split('id="attempts"')[1].split(">")[0]
        assert f'data-channel="deliveries:{destination.pk}"' in tail and 'data-live-tail="attempt"' in tail
        assert 'data-stream-url="ws://testserver:8101/v1/ws"' in tail
        assert "<template data-live-row>" in html and "data-live-status hidden" in html
        assert f'data-id="{attempt.pk}"' in html  # a streamed frame of this attempt is not added twice
        assert 'class="empty-row"' not in html


def test_every_form_page_renders(alice):
    destination = _http_destination(alice.org)
    client = _client(alice)
    chooser = client.get(reverse("console:destination-create"))
    assert chooser.status_code == 200 and b"?type=sqs" in chooser.content
    for type_ in ("http", "sqs", "s3", "eventbridge", "pubsub", "kafka", "rabbitmq", "websocket"):
        page = client.get(reverse("console:destination-create") + f"?type={type_}")
        assert page.status_code == 200, type_
        assert b'name="retry_intervals"' in page.content
    assert b'name="cfg_queue_url"' in client.get(reverse("console:destination-create") + "?type=sqs").content
    templates = client.get(reverse("console:destination-template-list"))
    assert templates.status_code == 200 and b"PagerDuty" in templates.content and b"Events API v2" in templates.content
    for template_id in ("slack", "pagerduty", "aws_sqs", "websocket"):
        page = client.get(reverse("console:destination-create-from-template", args=[template_id]))
        assert page.status_code == 200, template_id
    assert client.get(reverse("console:destination-create-from-template", args=["nope"])).status_code == 404
    assert client.get(reverse("console:destination-edit", args=[destination.pk])).status_code == 200
    assert client.get(reverse("console:destination-delete", args=[destination.pk])).status_code == 200


def test_an_unknown_type_shows_the_type_chooser(alice):
    page = _client(alice).get(reverse("console:destination-create") + "?type=ftp", follow=True)
    assert page.status_code == 200 and b"Choose one of the destination types" in page.content


# --- create and edit through the services ------------------------------------------------------


def test_it_creates_an_http_destination_through_the_service(alice):
    client = _client(alice)
    response = client.post(
        reverse("console:destination-create") + "?type=http",
        _form_data(cfg_auth_type="bearer", cfg_token=SECRET, signing_mode="hmac", signing_secret=SIGNING_SECRET),
    )
    destination = Destination.objects.get(organization=alice.org, name="Orders webhook")
    assert response.status_code == 302
    assert response["Location"] == reverse("console:destination-detail", args=[destination.pk])
    assert destination.slug == "orders-webhook"
    assert destination.headers == {"X-Team": "orders"}
    assert destination.retry_intervals == [10, 60] and destination.retry_backoff_type == "fixed"
    assert destination.retry_max_attempts == 3 and destination.circuit_breaker_threshold == 4
    assert destination.timeout_ms == 5000
    assert selectors.destination_provider_config(destination)["token"] == SECRET
    assert destination.provider_config["token"] != SECRET  # encrypted at rest
    assert selectors.destination_signing_config(destination)["secret"] == SIGNING_SECRET


def test_it_creates_from_a_template_with_the_blanks_filled(alice):
    client = _client(alice)
    form = client.get(reverse("console:destination-create-from-template", args=["pagerduty"])).content.decode()
    assert "https://events.pagerduty.com/v2/enqueue" in form  # pre-filled from config_template
    assert 'name="cfg_routing_key"' in form and "fill-in" in form
    response = client.post(
        reverse("console:destination-create-from-template", args=["pagerduty"]),
        _form_data(
            name="On-call",
            url="https://events.pagerduty.com/v2/enqueue",
            cfg_routing_key="R0UTINGKEY1234567890",
            retry_backoff_type="exponential",
        ),
    )
    assert response.status_code == 302
    destination = Destination.objects.get(organization=alice.org, name="On-call")
    assert destination.template == "pagerduty" and destination.type == "http"
    assert selectors.destination_provider_config(destination)["routing_key"] == "R0UTINGKEY1234567890"


def test_a_template_blank_left_empty_is_an_error_beside_its_field(alice):
    response = _client(alice).post(
        reverse("console:destination-create-from-template", args=["pagerduty"]),
        _form_data(name="On-call", url="https://events.pagerduty.com/v2/enqueue"),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="field-cfg_routing_key"' in html
    field = html.split('id="field-cfg_routing_key"')[1].split("</div>")[0]
    assert "Required by the pagerduty template." in field
    assert not Destination.objects.filter(organization=alice.org).exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"url": "ftp://files.example.com/"}, "url", "Must be an http:// or https:// URL with a host."),
        ({"url": ""}, "url", "This field is required for http destinations."),
        ({"name": ""}, "name", "This field is required."),
        ({"retry_max_attempts": "11"}, "retry_max_attempts", "Ensure this value is less than or equal to 10."),
        ({"retry_intervals": "30, soon"}, "retry_intervals", "Whole numbers of seconds"),
        ({"retry_intervals": "30, -1"}, "retry_intervals", "greater than or equal to 0"),
        ({"timeout_ms": "5"}, "timeout_ms", "greater than or equal to 100"),
        ({"headers": "Host: example.com"}, "headers", "Host is set by hookstream"),
        ({"headers": "no colon here"}, "headers", "expected “Name: value”"),
        ({"slug": "Not A Slug"}, "slug", "Must match ^[a-z0-9-]+$"),
        ({"cfg_auth_type": "bearer"}, "cfg_token", "Required when auth_type is &#x27;bearer&#x27;."),
        ({"signing_mode": "standard_webhooks", "signing_secret": "plain"}, "signing_secret", "Standard Webhooks"),
    ],
)
def test_bad_input_is_shown_beside_its_field(alice, overrides, field, message):
    response = _client(alice).post(reverse("console:destination-create") + "?type=http", _form_data(**overrides))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="form-errors"' in html
    block = html.split(f'id="field-{field}"')[1].split('<div class="field')[0]
    assert "has-error" in html.split(f'id="field-{field}"')[0][-40:]
    assert message in block, block
    assert not Destination.objects.filter(organization=alice.org).exists()


def test_a_refused_form_does_not_send_typed_secrets_back(alice):
    client = _client(alice)
    data = _form_data(url="", cfg_auth_type="bearer", cfg_token=SECRET, signing_mode="hmac", signing_secret="s3cr3t-x")
    response = client.post(reverse("console:destination-create") + "?type=http", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert SECRET not in html and "s3cr3t-x" not in html
    block = html.split('id="field-cfg_token"')[1].split('<div class="field')[0]
    assert "enter the secret again" in block

    destination = _http_destination(alice.org)
    edit = _form_data(slug=destination.slug, url="", cfg_auth_type="bearer", cfg_token="new-token-typed-4321")
    response = client.post(reverse("console:destination-edit", args=[destination.pk]), edit)
    html = response.content.decode()
    assert response.status_code == 400 and "new-token-typed-4321" not in html and 'value="****9876"' in html


def test_a_taken_slug_is_shown_beside_the_slug(alice):
    make_destination(alice.org, slug="orders")
    response = _client(alice).post(reverse("console:destination-create") + "?type=http", _form_data(slug="orders"))
    assert response.status_code == 400
    block = response.content.decode().split('id="field-slug"')[1].split('<div class="field')[0]
    assert "already exists" in block


def test_sqs_form_requires_its_provider_fields(alice):
    data = _form_data(cfg_queue_url="https://sqs.eu-west-1.amazonaws.com/1/orders", cfg_region="eu-west-1")
    response = _client(alice).post(reverse("console:destination-create") + "?type=sqs", data)
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("cfg_access_key_id", "cfg_secret_access_key"):
        block = html.split(f'id="field-{field}"')[1].split('<div class="field')[0]
        assert "This field is required for sqs destinations." in block


AWS = {"cfg_region": "eu-west-1", "cfg_access_key_id": "AKIAEXAMPLE", "cfg_secret_access_key": "aws-secret-1234"}


@pytest.mark.parametrize(
    ("type_", "fields", "secret"),
    [
        ("sqs", {"cfg_queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q", **AWS}, "secret_access_key"),
        ("s3", {"cfg_bucket": "archive", "cfg_format": "raw", **AWS}, "secret_access_key"),
        ("eventbridge", {"cfg_event_bus_arn": "default", **AWS}, "secret_access_key"),
        ("pubsub", {"cfg_project_id": "p", "cfg_topic_id": "t", "cfg_service_account_json": '{"type": "x"}'}, None),
        ("kafka", {"cfg_rest_url": "https://kafka.example.com", "cfg_cluster_id": "c", "cfg_topic": "t"}, None),
        (
            "rabbitmq",
            {
                "cfg_url": "http://rabbit.example.com:15672",
                "cfg_exchange": "e",
                "cfg_username": "u",
                "cfg_password": "pw",
            },
            "password",
        ),
        (
            "websocket",
            {"url": "wss://push.example.com/feed", "cfg_channel_name": "orders.eu", "cfg_require_ack": "on"},
            None,
        ),
    ],
)
def test_every_type_can_be_created_and_edited_unchanged(alice, type_, fields, secret):
    client = _client(alice)
    data = {key: value for key, value in _form_data(name=f"My {type_}").items() if not key.startswith(("cfg_", "sign"))}
    data.pop("method"), data.pop("headers")
    if type_ != "websocket":
        data.pop("url")
    data.update(fields)
    response = client.post(reverse("console:destination-create") + f"?type={type_}", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    destination = Destination.objects.get(organization=alice.org, name=f"My {type_}")
    assert destination.type == type_
    stored = selectors.destination_provider_config(destination)
    if secret:
        assert stored[secret] == fields[f"cfg_{secret}"]
    # The edit form, posted back as it is shown, changes nothing.
    form = client.get(reverse("console:destination-edit", args=[destination.pk]))
    assert form.status_code == 200
    shown = form.context["form"].initial
    posted = {k: v for k, v in shown.items() if v not in (None, False)}
    posted = {k: ("on" if v is True else v) for k, v in posted.items()}
    response = client.post(reverse("console:destination-edit", args=[destination.pk]), posted)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert selectors.destination_provider_config(Destination.objects.get(pk=destination.pk)) == stored


def test_it_creates_a_websocket_channel_destination_with_no_url(alice):
    """A channel destination of the live stream: a channel name and no URL, as the API accepts."""
    client = _client(alice)
    data = {key: value for key, value in _form_data(name="Live orders").items() if not key.startswith("sign")}
    data.pop("method"), data.pop("headers")
    data.update(url="", cfg_url="", cfg_channel_name="live-orders")
    response = client.post(reverse("console:destination-create") + "?type=websocket", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    destination = Destination.objects.get(organization=alice.org, name="Live orders")
    assert destination.type == "websocket" and destination.url == ""
    assert selectors.destination_provider_config(destination)["channel_name"] == "live-orders"
    page = client.get(reverse("console:destination-detail", args=[destination.pk]))
    assert page.status_code == 200 and b"live-orders" in page.content
    # Edited and posted back as shown, it stays a channel destination.
    shown = client.get(reverse("console:destination-edit", args=[destination.pk])).context["form"].initial
    posted = {k: ("on" if v is True else v) for k, v in shown.items() if v not in (None, False)}
    response = client.post(reverse("console:destination-edit", args=[destination.pk]), posted)
    assert response.status_code == 302, response.content.decode()[-3000:]
    destination.refresh_from_db()
    assert destination.url == ""


def test_a_reserved_channel_name_is_refused_beside_its_field(alice):
    data = {key: value for key, value in _form_data(name="Sneaky").items() if not key.startswith("sign")}
    data.pop("method"), data.pop("headers")
    data.update(url="", cfg_channel_name="events")
    response = _client(alice).post(reverse("console:destination-create") + "?type=websocket", data)
    assert response.status_code == 400
    block = response.content.decode().split('id="field-cfg_channel_name"')[1].split('<div class="field')[0]
    assert "channel of the live stream itself" in block
    url_block = response.content.decode().split('id="field-url"')[1].split('<div class="field')[0]
    assert "errorlist" not in url_block  # no URL is not an error: a channel destination has none
    assert not Destination.objects.filter(name="Sneaky").exists()


def test_edit_keeps_a_secret_left_masked_and_replaces_a_changed_one(alice):
    destination = _http_destination(alice.org)
    client = _client(alice)
    form = client.get(reverse("console:destination-edit", args=[destination.pk])).content.decode()
    assert 'type="password"' in form and 'value="****9876"' in form
    assert SECRET not in form and SIGNING_SECRET not in form and "header-secret-1111" not in form
    data = _form_data(
        name="Backend API v2",
        slug=destination.slug,
        url="https://api.example.com/hooks",
        headers="X-Custom: plain-value\nAuthorization: Bearer ****1111",
        cfg_auth_type="bearer",
        cfg_token="****9876",
        signing_mode="hmac",
        signing_secret="****5432",
    )
    response = client.post(reverse("console:destination-edit", args=[destination.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    destination.refresh_from_db()
    assert destination.name == "Backend API v2"
    assert selectors.destination_provider_config(destination)["token"] == SECRET
    assert selectors.destination_signing_config(destination)["secret"] == SIGNING_SECRET
    assert destination.headers["Authorization"] == "Bearer header-secret-1111"

    data.update(cfg_token="a-brand-new-token-0000")
    assert client.post(reverse("console:destination-edit", args=[destination.pk]), data).status_code == 302
    destination.refresh_from_db()
    assert selectors.destination_provider_config(destination)["token"] == "a-brand-new-token-0000"


def test_edit_refuses_a_mask_that_matches_nothing(alice):
    destination = _http_destination(alice.org)
    data = _form_data(slug=destination.slug, cfg_auth_type="bearer", cfg_token="****zzzz")
    response = _client(alice).post(reverse("console:destination-edit", args=[destination.pk]), data)
    assert response.status_code == 400
    block = response.content.decode().split('id="field-cfg_token"')[1].split('<div class="field')[0]
    assert "masked value that does not match" in block
    assert selectors.destination_provider_config(Destination.objects.get(pk=destination.pk))["token"] == SECRET


# --- actions ------------------------------------------------------------------------------------


def test_reset_closes_an_open_circuit_and_releases_held_deliveries(alice):
    destination = make_destination(alice.org)
    CircuitState.objects.filter(destination=destination).update(state=CircuitStateValue.OPEN, failure_count=5)
    held = make_delivery(make_event(alice.org), destination, status=DeliveryStatus.HELD)
    response = _client(alice).post(reverse("console:destination-circuit-reset", args=[destination.pk]), follow=True)
    assert response.status_code == 200 and b"Circuit closed" in response.content
    assert CircuitState.objects.get(destination=destination).state == CircuitStateValue.CLOSED
    held.refresh_from_db()
    assert held.status == DeliveryStatus.PENDING


def test_send_test_event_creates_a_delivery(alice):
    destination = make_destination(alice.org)
    response = _client(alice).post(reverse("console:destination-test", args=[destination.pk]), follow=True)
    assert response.status_code == 200 and b"Test event evt_" in response.content
    delivery = Delivery.objects.get(destination=destination)
    assert delivery.event.payload["type"] == "hookstream.test"


def test_pause_and_resume(alice):
    destination = make_destination(alice.org)
    held = make_delivery(make_event(alice.org), destination, status=DeliveryStatus.HELD)
    client = _client(alice)
    url = reverse("console:destination-status", args=[destination.pk])
    client.post(url, {"status": "paused"})
    destination.refresh_from_db()
    assert destination.status == DestinationStatus.PAUSED
    page = client.get(reverse("console:destination-detail", args=[destination.pk])).content.decode()
    assert ">Resume<" in page
    client.post(url, {"status": "active"})
    destination.refresh_from_db()
    held.refresh_from_db()
    assert destination.status == DestinationStatus.ACTIVE and held.status == DeliveryStatus.PENDING
    bad = client.post(url, {"status": "sleeping"}, follow=True)
    assert b"Unknown status." in bad.content


def test_retry_one_dead_letter_and_retry_all(alice):
    destination = make_destination(alice.org)
    first, second = _dead_letter(destination), _dead_letter(destination)
    client = _client(alice)
    response = client.post(
        reverse("console:destination-dead-letter-retry", args=[destination.pk, first.pk]), follow=True
    )
    assert b"retried" in response.content
    assert not DeadLetter.objects.filter(pk=first.pk).exists()
    assert Delivery.objects.get(pk=first.delivery_id).status == DeliveryStatus.PENDING
    again = client.post(reverse("console:destination-dead-letter-retry", args=[destination.pk, first.pk]))
    assert again.status_code == 404  # it is no longer a dead letter

    response = client.post(reverse("console:destination-dead-letters-retry", args=[destination.pk]), follow=True)
    assert b"Retrying 1 dead letter(s)" in response.content
    job = ReplayJob.objects.get(destination=destination)
    assert job.kind == ReplayJob.Kind.DEAD_LETTER_RETRY and job.total == 1
    assert DeadLetter.objects.filter(pk=second.pk).exists()  # the job (a worker) retries it


def test_delete_asks_first_then_deletes(alice):
    destination = make_destination(alice.org, name="Short-lived")
    client = _client(alice)
    confirm = client.get(reverse("console:destination-delete", args=[destination.pk]))
    assert b"Delete \xe2\x80\x9cShort-lived\xe2\x80\x9d?" in confirm.content
    assert Destination.objects.filter(pk=destination.pk).exists()
    response = client.post(reverse("console:destination-delete", args=[destination.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("console:destination-list")
    assert not Destination.objects.filter(pk=destination.pk).exists()
    assert client.get(reverse("console:destination-detail", args=[destination.pk])).status_code == 404


def test_actions_answer_only_post(alice):
    destination = make_destination(alice.org)
    client = _client(alice)
    for name in (
        "destination-test",
        "destination-status",
        "destination-circuit-reset",
        "destination-dead-letters-retry",
    ):
        assert client.get(reverse(f"console:{name}", args=[destination.pk])).status_code == 405


# --- CSRF, isolation, escaping -------------------------------------------------------------------


def _post_urls(destination, dead_letter) -> list[tuple[str, dict]]:
    pk = destination.pk
    return [
        (reverse("console:destination-create") + "?type=http", _form_data()),
        (reverse("console:destination-create-from-template", args=["slack"]), _form_data()),
        (reverse("console:destination-edit", args=[pk]), _form_data(slug=destination.slug)),
        (reverse("console:destination-delete", args=[pk]), {}),
        (reverse("console:destination-test", args=[pk]), {}),
        (reverse("console:destination-status", args=[pk]), {"status": "paused"}),
        (reverse("console:destination-circuit-reset", args=[pk]), {}),
        (reverse("console:destination-dead-letters-retry", args=[pk]), {}),
        (reverse("console:destination-dead-letter-retry", args=[pk, dead_letter.pk]), {}),
    ]


def _snapshot(org) -> dict:
    return {
        "destinations": list(Destination.all_objects.filter(organization=org).order_by("pk").values()),
        "circuits": list(CircuitState.objects.filter(destination__organization=org).values()),
        "deliveries": list(Delivery.objects.filter(organization=org).order_by("pk").values()),
        "dead_letters": list(DeadLetter.objects.filter(organization=org).values_list("pk", flat=True)),
        "jobs": ReplayJob.objects.filter(organization=org).count(),
    }


def test_every_post_needs_the_csrf_token(alice):
    destination = make_destination(alice.org)
    CircuitState.objects.filter(destination=destination).update(state=CircuitStateValue.OPEN)
    dead_letter = _dead_letter(destination)
    before = _snapshot(alice.org)
    client = _client(alice, csrf=True)
    for url, data in _post_urls(destination, dead_letter):
        assert client.post(url, data).status_code == 403, url
    assert _snapshot(alice.org) == before


def test_another_organizations_destination_answers_404_everywhere(alice, bob):
    destination = _http_destination(alice.org)
    CircuitState.objects.filter(destination=destination).update(state=CircuitStateValue.OPEN)
    dead_letter = _dead_letter(destination)
    before = _snapshot(alice.org)
    intruder = _client(bob)
    pk = destination.pk
    for name in ("destination-detail", "destination-live", "destination-edit", "destination-delete"):
        assert intruder.get(reverse(f"console:{name}", args=[pk])).status_code == 404, name
    for url, data in _post_urls(destination, dead_letter)[2:]:
        assert intruder.post(url, data).status_code == 404, url
    # Whatever the method: a POST to a page, a GET to an action.
    for url, _data in _post_urls(destination, dead_letter)[2:]:
        assert intruder.get(url).status_code == 404, url
    for name in ("destination-detail", "destination-live"):
        assert intruder.post(reverse(f"console:{name}", args=[pk])).status_code == 404, name
        assert _client(alice).post(reverse(f"console:{name}", args=[pk])).status_code == 405, name
    for name in ("destination-edit", "destination-delete", "destination-test"):
        assert intruder.put(reverse(f"console:{name}", args=[pk])).status_code == 404, name
    assert _snapshot(alice.org) == before
    assert SECRET not in intruder.get(reverse("console:destination-list")).content.decode()
    # Alice's dead letter under bob's own destination is not found either.
    own = make_destination(bob.org)
    url = reverse("console:destination-dead-letter-retry", args=[own.pk, dead_letter.pk])
    assert intruder.post(url).status_code == 404
    assert _snapshot(alice.org) == before


def test_user_supplied_values_are_escaped(alice):
    script = "<script>alert(1)</script>"
    destination = services.destination_create(
        organization=alice.org,
        data={
            "name": f"Evil {script}",
            "type": "http",
            "url": "https://api.example.com/x?q=<script>alert(2)</script>",
            "headers": {"X-Note": script},
            "provider_config": {"auth_type": "basic", "username": script, "password": "pw-secret-7777"},
        },
    )
    dead = _dead_letter(destination)
    DeadLetter.objects.filter(pk=dead.pk).update(last_error=script)
    DeliveryAttempt.objects.create(
        organization=alice.org,
        delivery=dead.delivery,
        event=dead.event,
        destination=destination,
        attempt_number=1,
        status="failed",
        error=script,
    )
    client = _client(alice)
    for url in (
        reverse("console:destination-list"),
        reverse("console:destination-detail", args=[destination.pk]),
        reverse("console:destination-live", args=[destination.pk]),
        reverse("console:destination-edit", args=[destination.pk]),
        reverse("console:destination-delete", args=[destination.pk]),
        reverse("console:dashboard"),
    ):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html, url
        assert "&lt;script&gt;alert(" in html, url
        assert "pw-secret-7777" not in html, url


def test_pages_need_a_login(alice):
    destination = make_destination(alice.org)
    anonymous = Client()
    for url in (
        reverse("console:destination-list"),
        reverse("console:destination-detail", args=[destination.pk]),
        reverse("console:destination-template-list"),
    ):
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert anonymous.post(reverse("console:destination-circuit-reset", args=[destination.pk])).status_code == 302
