"""Console: the event list (filters, older pages) and the event detail (body, headers,
deliveries, attempts timeline, retry)."""

import base64
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt
from tests.factories import make_delivery, make_destination, make_event, make_one_of_everything, make_source

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def client_for(tenant, enforce_csrf=False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(tenant.user)
    return client


def attempt(delivery, number, status, **fields):
    return DeliveryAttempt.objects.create(
        organization=delivery.organization,
        delivery=delivery,
        event=delivery.event,
        destination=delivery.destination,
        attempt_number=number,
        status=status,
        **fields,
    )


@pytest.fixture
def failed_event(alice):
    """An event of alice's with one dead delivery (two failed attempts) and one that succeeded."""
    source = make_source(alice.org, name="Stripe")
    good = make_destination(alice.org, name="Warehouse")
    bad = make_destination(alice.org, name="Billing")
    event = make_event(alice.org, {"type": "invoice.paid", "amount": 12}, source=source, headers={"X-Trace": "t-1"})
    ok = make_delivery(event, good, status="succeeded", attempt_count=1)
    attempt(ok, 1, "success", response_status=200, duration_ms=12, response_body="thanks")
    dead = make_delivery(event, bad, status="dead", attempt_count=2, last_error="HTTP 500")
    attempt(dead, 1, "failed", response_status=500, duration_ms=40, error="HTTP 500", response_body="boom " * 300)
    attempt(dead, 2, "failed", response_status=503, duration_ms=41, error="HTTP 503", is_dlq=True)
    DeadLetter.objects.create(
        organization=alice.org, delivery=dead, destination=bad, event=event, reason="retries_exhausted"
    )
    return event


def test_it_lists_events_with_source_type_and_delivery_summary(alice, failed_event):
    response = client_for(alice).get("/events/")
    assert response.status_code == 200
    html = response.content.decode()
    assert failed_event.pk in html
    assert "Stripe" in html and "invoice.paid" in html
    assert "partially delivered" in html
    assert "1 dead" in html and "1 succeeded" in html


def test_it_filters_events_by_status_source_and_destination(alice, failed_event):
    source = make_source(alice.org, name="GitHub")
    other = make_event(alice.org, {"type": "push"}, source=source)
    client = client_for(alice)

    by_source = client.get("/events/", {"source_id": source.pk}).content.decode()
    assert other.pk in by_source and failed_event.pk not in by_source

    by_status = client.get("/events/", {"status": "no_deliveries"}).content.decode()
    assert other.pk in by_status and failed_event.pk not in by_status

    billing = Delivery.objects.get(event=failed_event, status="dead").destination_id
    by_destination = client.get("/events/", {"destination_id": billing}).content.decode()
    assert failed_event.pk in by_destination and other.pk not in by_destination


def test_an_unknown_filter_value_is_a_field_error_not_a_500(alice, bob, failed_event):
    bob_source = make_source(bob.org)
    response = client_for(alice).get("/events/", {"source_id": bob_source.pk, "status": "nonsense"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Select a valid choice" in html
    assert failed_event.pk not in html


def test_older_pages_follow_the_cursor_without_counting(alice):
    start = timezone.now()
    events = [
        make_event(alice.org, created_at=start - timedelta(seconds=i), received_at=start - timedelta(seconds=i))
        for i in range(30)
    ]
    client = client_for(alice)
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/events/")
    # Nothing counts the organization's rows (Django's .count() is "COUNT(*) AS __count");
    # counts of the deliveries of the page's events are fine.
    sqls = [q["sql"].upper() for q in queries.captured_queries]
    assert not [sql for sql in sqls if "COUNT(*)" in sql or "__COUNT" in sql]
    assert len(queries.captured_queries) <= 12
    html = first.content.decode()
    assert events[0].pk in html and events[24].pk in html and events[25].pk not in html
    older = first.context["page"].older_query
    assert older and "cursor=" in older

    second = client.get(f"/events/?{older}")
    html = second.content.decode()
    assert events[25].pk in html and events[29].pk in html and events[0].pk not in html
    assert second.context["page"].older_query is None
    assert "Newest" in html

    broken = client.get("/events/", {"cursor": "not-a-cursor"}, follow=True)
    assert broken.status_code == 200 and events[0].pk in broken.content.decode()


def test_the_detail_shows_body_headers_deliveries_and_the_attempts_timeline(alice, failed_event):
    response = client_for(alice).get(f"/events/{failed_event.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&quot;type&quot;: &quot;invoice.paid&quot;" in html  # pretty-printed JSON, escaped
    assert "X-Trace" in html and "t-1" in html
    assert "Warehouse" in html and "Billing" in html
    assert html.count('<li class="failed">') == 2 and html.count('<li class="succeeded">') == 1
    assert "HTTP <strong>503</strong>" in html and "41 ms" in html and "dead letter" in html
    assert "boom " * 10 in html and "boom " * 200 not in html  # a response excerpt, not the whole body
    assert "Retry failed deliveries" in html


def test_retry_sends_the_dead_deliveries_again(alice, failed_event):
    client = client_for(alice)
    response = client.post(f"/events/{failed_event.pk}/retry/", follow=True)
    assert response.status_code == 200
    assert "Retrying 1 delivery." in response.content.decode()
    assert set(Delivery.objects.filter(event=failed_event).values_list("status", flat=True)) == {
        "succeeded",
        "pending",
    }
    assert not DeadLetter.objects.filter(event=failed_event).exists()

    again = client.post(f"/events/{failed_event.pk}/retry/", follow=True)
    assert "Nothing to retry" in again.content.decode()
    assert client.get(f"/events/{failed_event.pk}/retry/").status_code == 405


def test_retry_enforces_csrf(alice, failed_event):
    response = client_for(alice, enforce_csrf=True).post(f"/events/{failed_event.pk}/retry/")
    assert response.status_code == 403
    assert Delivery.objects.filter(event=failed_event, status="dead").count() == 1


def test_another_organizations_event_is_a_404_and_is_not_retried(alice, bob, failed_event):
    client = client_for(bob)
    assert client.get(f"/events/{failed_event.pk}/").status_code == 404
    assert client.post(f"/events/{failed_event.pk}/retry/").status_code == 404
    assert Delivery.objects.filter(event=failed_event, status="dead").count() == 1
    assert failed_event.pk not in client.get("/events/").content.decode()


def test_user_values_in_bodies_headers_and_attempts_are_escaped(alice):
    source = make_source(alice.org, name=XSS)
    destination = make_destination(alice.org, name=XSS)
    event = make_event(
        alice.org,
        {"type": XSS},
        source=source,
        headers={XSS: XSS},
        query={XSS: XSS},
    )
    delivery = make_delivery(event, destination, status="dead", last_error=XSS)
    attempt(delivery, 1, "failed", error=XSS, response_body=XSS)
    raw = make_event(alice.org, body=XSS.encode(), content_type="text/html", source=source)
    client = client_for(alice)
    for path in ("/events/", f"/events/{event.pk}/", f"/events/{raw.pk}/"):
        html = client.get(path).content.decode()
        assert XSS not in html, path
        assert XSS_ESCAPED in html, path


def test_a_binary_body_is_shown_as_base64(alice):
    event = make_event(alice.org, body=b"\xff\xfe\x00binary", content_type="application/octet-stream")
    html = client_for(alice).get(f"/events/{event.pk}/").content.decode()
    assert "(base64)" in html and "//4AYmluYXJ5" in html


def test_pages_need_a_login(db):
    response = Client().get("/events/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_method_a_page_does_not_allow_is_a_404_for_another_organizations_id(alice, bob, failed_event):
    assert client_for(bob).get(f"/events/{failed_event.pk}/retry/").status_code == 404
    assert client_for(bob).post(f"/events/{failed_event.pk}/").status_code == 404
    assert client_for(alice).post(f"/events/{failed_event.pk}/").status_code == 405


def test_the_navigation_marks_the_events_section(alice, failed_event):
    for path in ("/events/", f"/events/{failed_event.pk}/"):
        html = client_for(alice).get(path).content.decode()
        assert '<a href="/events/" aria-current="page">Events</a>' in html, path
        assert '<a href="/sources/">Sources</a>' in html


def test_a_forged_cursor_shows_the_newest_page(alice, failed_event):
    forged = base64.urlsafe_b64encode(b"2025-01-01T00:00:00+00:00|\x00").decode()
    for path in ("/events/", "/sources/", "/connections/", "/topics/", "/api-keys/"):
        response = client_for(alice).get(path, {"cursor": forged}, follow=True)
        assert response.status_code == 200, path
        assert "no longer valid" in response.content.decode(), path


def test_deeply_nested_bodies_and_payloads_still_render(alice):
    deep = "[" * 900 + "]" * 900
    destination = make_destination(alice.org)
    event = make_event(alice.org, body=deep.encode(), content_type="application/json")
    make_delivery(event, destination, status="succeeded", transformed_payload={"a": json.loads("[" * 400 + "]" * 400)})
    response = client_for(alice).get(f"/events/{event.pk}/")
    assert response.status_code == 200
    assert response.context["body"].count("[") == 900 and "Transformed payload" in response.content.decode()


def test_every_page_renders_for_its_organization_and_is_a_404_for_another(alice, bob):
    rows = make_one_of_everything(alice.org)
    topic, subscription = rows["topic"].pk, rows["subscription"].pk
    pages = [
        "/events/",
        f"/events/{rows['event'].pk}/",
        "/sources/",
        "/sources/new/",
        f"/sources/{rows['source'].pk}/",
        f"/sources/{rows['source'].pk}/edit/",
        f"/sources/{rows['source'].pk}/delete/",
        "/connections/",
        "/connections/new/",
        f"/connections/{rows['connection'].pk}/edit/",
        f"/connections/{rows['connection'].pk}/delete/",
        "/topics/",
        "/topics/new/",
        f"/topics/{topic}/",
        f"/topics/{topic}/edit/",
        f"/topics/{topic}/delete/",
        f"/topics/{topic}/subscriptions/{subscription}/delete/",
        "/api-keys/",
        "/api-keys/new/",
        f"/api-keys/{rows['api_key'].pk}/revoke/",
    ]
    mine, theirs = client_for(alice), client_for(bob)
    for path in pages:
        assert mine.get(path).status_code == 200, path
        if any(part.startswith(("evt_", "src_", "conn_", "top_", "ak_")) for part in path.split("/")):
            assert theirs.get(path).status_code == 404, path
