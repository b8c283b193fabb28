"""A console that explains itself, in headless Chromium: why a delivery is dead (event and
destination pages), "Retry all" that asks first, the filter and transform tester, and the
destination form that shows only the fields of the chosen auth type and signing mode.
Screenshots land in ``screenshots/``."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from deliveries.models import DeadLetter, DeliveryStatus, ReplayJob
from destinations.models import CircuitState, CircuitStateValue
from intake.models import Connection
from tests.browser.conftest import log_in, shot
from tests.factories import make_delivery, make_destination, make_event, make_source

HELD = "held by an open circuit longer than the retry window; last error: none"


def _dead_letter(destination, event):
    delivery = make_delivery(event, destination, status=DeliveryStatus.DEAD, attempt_count=0, last_error=HELD)
    DeadLetter.objects.create(
        organization=destination.organization,
        delivery=delivery,
        destination=destination,
        event=event,
        reason="circuit_open",
        last_error=HELD,
    )


def test_a_dead_letter_says_why_and_retry_all_asks_first(page, alice):
    destination = make_destination(alice.org, name="Billing", circuit_breaker_reset_ms=600_000)
    CircuitState.objects.filter(destination=destination).update(state=CircuitStateValue.OPEN, failure_count=5)
    events = [make_event(alice.org, {"type": "invoice.paid", "n": n}) for n in range(3)]
    for event in events:
        _dead_letter(destination, event)
    log_in(page, alice)

    # The event page says why the delivery is dead, in words.
    page.goto(f"/events/{events[0].pk}/")
    reason = page.locator("p.dead-reason")
    expect(reason).to_contain_text("circuit open: held until the retry window closed")
    expect(reason).to_contain_text("none: no attempt was made")
    shot(page, "explain-event-dead-letter", docs="event-dead-letter", focus="p.dead-reason")

    # So does the destination page, for each dead letter.
    page.goto(f"/destinations/{destination.pk}/")
    rows = page.locator("#dead-letters tr.dead-letter")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("circuit open: held until the retry window closed")
    shot(page, "explain-destination-dead-letters")

    # Retry all asks first, with the count, and offers to reset the open circuit.
    page.click("#dead-letters >> text=Retry all…")
    page.wait_for_url("**/dead-letters/retry/confirm/")
    expect(page.locator("section.confirm")).to_contain_text("Retry the 3 dead letters of “Billing”?")
    expect(page.locator("section.confirm")).to_contain_text("The circuit is open")
    assert not ReplayJob.objects.exists()
    shot(page, "explain-retry-all-confirm")
    page.click("text=Reset circuit and retry")
    page.wait_for_url(f"**/destinations/{destination.pk}/")
    job = ReplayJob.objects.get(destination=destination)
    expect(page.locator(".messages")).to_contain_text("Circuit closed.")
    expect(page.locator(".messages")).to_contain_text(f"Retrying 3 dead letter(s) (job {job.pk}).")
    assert CircuitState.objects.get(destination=destination).state == CircuitStateValue.CLOSED
    shot(page, "explain-retry-all-done")


def test_the_filter_and_transform_tester(page, alice):
    shop = make_source(alice.org, name="Shop")
    other = make_source(alice.org, name="Newsletter")
    make_destination(alice.org, name="Warehouse")
    make_event(alice.org, {"type": "customer.updated", "id": 1}, source=shop)
    order = make_event(alice.org, {"type": "order.created", "id": 42, "amount": 99.5, "items": [1, 2]}, source=shop)
    signup = make_event(alice.org, {"type": "signup", "email": "ann@example.com"}, source=other)
    log_in(page, alice)

    page.goto(f"/connections/new/?source_id={shop.pk}")
    picker = page.locator("#id_test_event_id")
    expect(picker.locator(f"option[value='{order.pk}']")).to_have_count(1)
    expect(picker.locator(f"option[value='{signup.pk}']")).to_have_count(0)
    page.fill("#id_filter_rules", '[{"field": "payload.type", "op": "eq", "value": "order.created"}]')
    page.fill("#id_transform_expression", '{"order": id, "total": amount}')
    picker.select_option(order.pk)
    page.click("button[data-route-test]")
    result = page.locator("[data-route-test-result]")
    expect(result.locator("[data-verdict=match]")).to_be_visible()
    expect(result.locator("pre[data-transform=output]")).to_contain_text('"total": 99.5')
    assert page.url.endswith(f"/connections/new/?source_id={shop.pk}")  # still on the form
    shot(page, "tester-match", docs="route-tester", focus="[data-route-test-result]")

    # A transform that fails shows its error; the rules that do not match say which.
    page.fill("#id_transform_expression", "items")
    page.fill("#id_filter_rules", '[{"field": "payload.type", "op": "eq", "value": "refund"}]')
    page.click("button[data-route-test]")
    expect(result.locator("[data-transform=error]")).to_contain_text(
        "transform failed: the transform must produce a JSON object, it produced an array"
    )
    expect(result.locator("[data-verdict=no-match]")).to_be_visible()
    expect(result.locator("table.rule-results tr.failed")).to_contain_text('"order.created"')
    shot(page, "tester-error")

    # Choosing another source offers its events.
    page.select_option("#id_source_id", other.pk)
    expect(picker.locator(f"option[value='{signup.pk}']")).to_have_count(1)
    expect(picker.locator(f"option[value='{order.pk}']")).to_have_count(0)

    # The form itself still saves as before.
    page.fill("#id_transform_expression", '{"email": email}')
    page.fill("#id_filter_rules", "")
    page.select_option("#id_destination_id", label="Warehouse")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/connections/")
    assert Connection.objects.get(source=other).transform_expression == '{"email": email}'


def test_the_destination_form_shows_the_fields_of_the_chosen_auth_type(page, alice):
    log_in(page, alice)
    page.goto("/destinations/new/?type=http")
    token, username, password = (
        page.locator("#field-cfg_token"),
        page.locator("#field-cfg_username"),
        page.locator("#field-cfg_password"),
    )
    api_key, secret, prefix = (
        page.locator("#field-cfg_api_key"),
        page.locator("#field-signing_secret"),
        page.locator("#field-signing_prefix"),
    )
    # No auth, no signing: none of their fields.
    for hidden in (token, username, password, api_key, secret, prefix):
        expect(hidden).to_be_hidden()
    expect(page.locator("#field-cfg_routing_key")).to_be_visible()
    shot(page, "destination-form-no-auth")

    page.select_option("#id_cfg_auth_type", "bearer")
    expect(token).to_be_visible()
    expect(username).to_be_hidden()
    page.select_option("#id_cfg_auth_type", "basic")
    expect(username).to_be_visible()
    expect(password).to_be_visible()
    expect(token).to_be_hidden()
    page.select_option("#id_signing_mode", "standard_webhooks")
    expect(secret).to_be_visible()
    expect(prefix).to_be_hidden()
    page.select_option("#id_signing_mode", "hmac")
    expect(prefix).to_be_visible()
    shot(page, "destination-form-basic-auth-hmac")

    # One submit reports every error: the blank URL (the service's), the missing password
    # (the provider's rule) and the missing signing secret, together.
    page.fill("#id_name", "Orders")
    page.fill("#id_cfg_username", "ops")
    page.click("form.destination-form button[type=submit]")
    expect(page.locator("#field-url .errorlist")).to_contain_text("required for http destinations")
    expect(page.locator("#field-cfg_password .errorlist")).to_contain_text("Required when auth_type is 'basic'.")
    expect(page.locator("#field-signing_secret .errorlist")).to_contain_text("A non-empty string is required.")
    # The choices made are kept, so the fields shown are still those of basic auth and HMAC.
    expect(username).to_be_visible()
    expect(token).to_be_hidden()
    shot(page, "destination-form-all-errors")


def test_events_search_and_pages_both_ways(page, alice):
    start = timezone.now() - timedelta(hours=1)
    events = []
    for n in range(30):
        when = start - timedelta(minutes=n)
        events.append(make_event(alice.org, {"type": "order.created", "n": n}, created_at=when, received_at=when))
    needle = make_event(alice.org, {"type": "order.created", "customer": "Zebulon Quist"})
    log_in(page, alice)

    page.goto("/events/")
    page.fill("#id_search", "zebulon")
    page.click("form.filters button[type=submit]")
    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(needle.pk)
    shot(page, "events-search")

    page.goto("/events/")
    # Received before a time: 27 of the 30 (n = 3…29), 25 on the first page.
    page.fill("#id_before", (start - timedelta(minutes=2, seconds=30)).strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text(events[3].pk)
    page.click("text=Older »")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(events[28].pk)
    page.click("text=« Newer")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text(events[3].pk)
    expect(page.locator("nav.pager")).not_to_contain_text("Newer")
    assert "before=" in page.url
    shot(page, "events-paged")
