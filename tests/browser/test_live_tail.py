"""The live tails, fed by /v1/ws: a new event appears at the top of the events page, and a new
attempt at the top of its destination's page, without a reload."""

import json

from django.test import Client
from playwright.sync_api import expect

from deliveries.engine import process_delivery
from deliveries.models import DeliveryAttempt
from tests.browser.conftest import log_in, shot
from tests.deliveries.conftest import receiver  # noqa: F401  (fixture)
from tests.factories import make_delivery, make_destination, make_event, make_source
from tests.support import StreamServer


def test_a_new_event_appears_on_the_events_page_without_a_reload(page, live_server, stream_server, alice):
    source = make_source(alice.org, name="Orders")
    log_in(page, alice)
    page.goto("/events/")
    page.wait_for_selector("[data-live-status]:not([hidden])")  # subscribed over the stream

    response = Client().post(f"/v1/ingest/{source.pk}", data=json.dumps({"n": 1}), content_type="application/json")
    event_id = response.json()["event_id"]

    row = page.wait_for_selector(f"tr.live-row a:text('{event_id}')")
    assert row.get_attribute("href") == f"/events/{event_id}/"
    shot(page, "events-live-tail")


def test_a_new_attempt_appears_on_its_destination_page_and_no_other(
    page,
    live_server,
    stream_server,
    alice,
    receiver,  # noqa: F811
):
    orders = make_destination(alice.org, name="Orders", url=receiver.url, circuit_breaker_enabled=False)
    other = make_destination(alice.org, name="Billing", url=receiver.url, circuit_breaker_enabled=False)
    log_in(page, alice)
    page.goto(f"/destinations/{orders.pk}/")
    expect(page.locator("#attempts [data-live-status]")).to_be_visible()  # subscribed over the stream
    expect(page.locator("#attempts tr.empty-row")).to_have_count(1)
    page.evaluate("window.notReloaded = true")

    # Real attempts against a receiver on loopback: the other destination's first, then a
    # failure and a success of this one's.
    process_delivery(make_delivery(make_event(alice.org), other).pk)
    receiver.default = (503, {}, b'{"error":"down"}')
    failed = make_delivery(make_event(alice.org), orders)
    process_delivery(failed.pk)
    receiver.default = (200, {}, b'{"ok":true}')
    succeeded = make_delivery(make_event(alice.org), orders)
    process_delivery(succeeded.pk)

    rows = page.locator("#attempts tbody tr.live-row")
    expect(rows).to_have_count(2)
    newest, older = rows.nth(0), rows.nth(1)
    expect(newest).to_have_attribute("data-attempt-status", "success")
    expect(newest.locator(".badge.ok")).to_have_text("success")
    expect(newest.locator("[data-response-status]")).to_have_text("200")
    expect(newest).to_contain_text("#1 initial")
    expect(newest.locator(f"a[href='/events/{succeeded.event_id}/']")).to_have_text(succeeded.event_id)
    expect(older).to_have_attribute("data-attempt-status", "failed")
    expect(older.locator(".badge.bad")).to_have_text("failed")
    expect(older.locator("[data-response-status]")).to_have_text("503")
    expect(older.locator(".badge.dead")).to_have_count(0)  # a retry is scheduled
    expect(page.locator("#attempts tr.empty-row")).to_have_count(0)
    # The other destination's attempt went to its own channel only.
    other_attempt = DeliveryAttempt.objects.get(destination=other)
    expect(page.locator(f"#attempts tr[data-id='{other_attempt.pk}']")).to_have_count(0)
    expect(page.locator("#attempts tbody tr")).to_have_count(2)
    assert page.evaluate("window.notReloaded") is True
    shot(page, "destination-live-tail", docs="destination-live-tail", focus="#attempts")


def test_without_the_stream_the_attempts_refresh_and_the_tail_comes_back(
    page,
    live_server,
    stream_server,
    alice,
    receiver,  # noqa: F811
):
    destination = make_destination(alice.org, name="Orders", url=receiver.url)
    log_in(page, alice)
    page.goto(f"/destinations/{destination.pk}/")
    status = page.locator("#attempts [data-live-status]")
    expect(status).to_be_visible()

    # The stream process goes away: the status line goes, and the page's refresh (every 2 s)
    # shows the attempts recorded meanwhile.
    stream_server.stop()
    expect(status).to_be_hidden()
    while_down = make_delivery(make_event(alice.org), destination)
    process_delivery(while_down.pk)
    expect(page.locator("#attempts tbody tr.attempt")).to_have_count(1, timeout=15_000)
    expect(page.locator("#attempts tbody tr.attempt").first).to_contain_text(while_down.event_id)

    # It comes back on the same port: the tail reconnects and streams again.
    again = StreamServer(port=stream_server.port).start()
    try:
        expect(status).to_be_visible(timeout=20_000)
        after = make_delivery(make_event(alice.org), destination)
        process_delivery(after.pk)
        newest = page.locator("#attempts tbody tr").first
        expect(newest).to_have_class("attempt live-row")
        expect(newest).to_contain_text(after.event_id)
        expect(page.locator("#attempts tbody tr.attempt")).to_have_count(2)
    finally:
        again.stop()
