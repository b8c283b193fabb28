"""The events, sources, connections, topics and API key pages in headless Chromium, with
screenshots of each under ``screenshots/``."""

from intake.models import Connection, Subscription, Topic
from tests.browser.conftest import log_in, shot
from tests.console.test_events import attempt
from tests.factories import make_delivery, make_destination, make_event, make_source


def seed(org):
    source = make_source(org, name="Stripe")
    warehouse = make_destination(org, name="Warehouse")
    billing = make_destination(org, name="Billing")
    Connection.objects.create(
        organization=org,
        source=source,
        destination=warehouse,
        name="paid invoices",
        filter_rules=[{"field": "payload.type", "op": "eq", "value": "invoice.paid"}],
    )
    topic = Topic.objects.create(organization=org, name="Orders", slug="orders")
    Subscription.objects.create(organization=org, topic=topic, destination=billing)
    for n in range(3):
        make_event(org, {"type": "customer.updated", "n": n}, source=source)
    event = make_event(
        org,
        {"type": "invoice.paid", "amount": 1200, "lines": [{"sku": "A-1", "qty": 2}]},
        source=source,
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=abc"},
    )
    ok = make_delivery(event, warehouse, status="succeeded", attempt_count=1)
    attempt(ok, 1, "success", response_status=200, duration_ms=18, response_body='{"ok": true}')
    dead = make_delivery(event, billing, status="dead", attempt_count=2, last_error="HTTP 502")
    attempt(dead, 1, "failed", response_status=500, duration_ms=45, error="HTTP 500", response_body="upstream error")
    attempt(dead, 2, "failed", response_status=502, duration_ms=51, error="HTTP 502", is_dlq=True)
    return source, topic, event


def test_events_sources_topics_and_api_keys(page, live_server, alice):
    source, topic, event = seed(alice.org)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, alice)

    page.click("nav.mainnav >> text=Events")
    page.wait_for_url("**/events/")
    assert page.locator("table.events tbody tr").count() == 4
    assert page.locator("nav.mainnav a[aria-current=page]").inner_text() == "Events"
    shot(page, "events-list")

    page.click(f"text={event.pk}")
    page.wait_for_url(f"**/events/{event.pk}/")
    assert page.locator("ol.timeline li.failed").count() == 2
    assert page.locator("ol.timeline li.succeeded").count() == 1
    assert "invoice.paid" in page.locator("#event-body").inner_text()
    shot(page, "event-detail")
    page.click("text=Retry failed deliveries")
    assert "Retrying 1 delivery." in page.locator(".messages").inner_text()

    page.goto("/sources/")
    ingest_url = page.locator(f"#ingest-url-{source.pk}").input_value()
    assert ingest_url.endswith(f"/v1/ingest/{source.pk}")
    copy = page.locator(f"[data-copy='#ingest-url-{source.pk}']")
    assert copy.is_visible()  # shown once the script runs
    copy.click()
    assert page.evaluate("navigator.clipboard.readText()") == ingest_url
    shot(page, "sources-list")
    page.click(f"table.sources >> text={source.name}")
    assert "paid invoices" in page.locator("table.connections").inner_text()
    shot(page, "source-detail")

    page.goto("/sources/new/")
    page.fill("#id_name", "Signed sender")
    page.select_option("#id_verification_type", "standard_webhooks")
    page.check("#id_generate_secret")
    shot(page, "source-form")
    page.click("text=Create source")
    secret = page.locator(".secret-once #generated-secret").input_value()
    assert secret.startswith("whsec_")
    shot(page, "source-secret-once")
    page.click("text=Done")
    assert secret not in page.content() and f"****{secret[-4:]}" in page.content()

    page.goto("/connections/new/")
    page.select_option("#id_source_id", source.pk)
    page.select_option("#id_destination_id", label="Billing")
    page.fill("#id_filter_rules", "[{")
    page.click("text=Create connection")
    assert "Not valid JSON" in page.locator(".field.has-error").inner_text()
    shot(page, "connection-form-error")
    page.goto("/connections/")
    shot(page, "connections-list")

    page.goto("/topics/")
    shot(page, "topics-list")
    page.goto(f"/topics/{topic.pk}/")
    assert page.locator("#publish-url").input_value().endswith("/v1/topics/orders/publish")
    shot(page, "topic-detail")

    page.goto("/api-keys/new/")
    page.fill("#id_name", "deploy bot")
    page.click("text=Create key")
    raw = page.locator(".secret-once #raw-key").input_value()
    assert raw.startswith("hs_live_") and len(raw) == 72
    shot(page, "apikey-created")
    page.click("text=Done")
    page.wait_for_url("**/api-keys/")
    assert raw not in page.content() and f"{raw[:12]}…" in page.content()
    row = page.locator("table.apikeys tr", has_text="deploy bot")
    row.locator("text=Revoke").click()
    page.click("button:has-text('Revoke key')")
    page.wait_for_url("**/api-keys/")
    assert "revoked" in page.locator("table.apikeys tr", has_text="deploy bot").inner_text()
    shot(page, "apikeys-list")
