"""The events page's live tail: a new event appears at the top without a reload, fed by /v1/ws."""

import json

from django.test import Client

from tests.browser.conftest import log_in, shot
from tests.factories import make_source


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
