"""The destination pages in headless Chromium, with real deliveries.

Deliveries really happen: a Celery worker (threads pool, ``worker_factory`` of the delivery
tests) runs inside the test process and consumes the configured Redis broker, so a click on
"Send test event" goes through ``on_commit`` → broker → worker → engine → an HTTP request to a
receiver on 127.0.0.1 (``tests.deliveries.receiver.Receiver``, a threaded ``http.server``
whose answer the test switches between 200 and 500). A worker rather than calling the engine
from a thread: the page's buttons enqueue wake-ups on the broker, and only a consumer of the
broker exercises that path — including the retry countdown that fills the dead letter queue.

``HOOKSTREAM_DOCS_SCREENSHOTS=1 pytest tests/browser`` refreshes ``docs/dashboard.png`` (the
README's screenshot) from the demo data seeded here.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus, TriggerType
from destinations import services
from destinations.models import CircuitState, CircuitStateValue, Destination
from hookstream.models import Organization
from intake.models import Event
from tests.browser.conftest import log_in, shot
from tests.deliveries.conftest import receiver, worker_factory  # noqa: F401  (fixtures)
from tests.deliveries.receiver import Receiver

# The live region refreshes every 2 s and a retry waits 1 s: leave room on a busy machine.
expect.set_options(timeout=15_000)


def _answer(server: Receiver, status: int) -> None:
    server.default = (status, {}, b'{"ok":true}' if status == 200 else b'{"error":"down"}')


def _attempt_rows(page, status: str):
    return page.locator(f"#attempts tr.attempt[data-attempt-status={status}]")


def test_create_from_a_template_send_open_the_breaker_reset_and_retry_a_dead_letter(
    page,
    alice,
    receiver,  # noqa: F811
    worker_factory,  # noqa: F811
):
    worker_factory(2)
    log_in(page, alice)

    # From a template: the Slack template, pointed at the local receiver.
    page.goto("/destinations/templates/")
    assert page.locator(".choice-grid li").count() == 15
    shot(page, "destination-templates")
    page.click("#template-slack a")
    page.wait_for_url("**/destinations/templates/slack/")
    # Submitted with the template's blank left empty: the error is beside the URL field.
    page.fill("#id_name", "Ops alerts")
    page.click("form.destination-form button[type=submit]")
    assert "Required by the slack template." in page.locator("#field-url .errorlist").inner_text()
    assert page.locator(".form-errors").is_visible()
    shot(page, "destination-form-errors")

    page.fill("#id_url", receiver.url)
    # A small policy so the flow is quick: one retry after 1 s, the breaker opens after 2 failures.
    page.fill("#id_retry_max_attempts", "1")
    page.select_option("#id_retry_backoff_type", "fixed")
    page.fill("#id_retry_intervals", "1")
    page.fill("#id_circuit_breaker_threshold", "2")
    page.fill("#id_circuit_breaker_reset_ms", "600000")
    page.click("form.destination-form button[type=submit]")
    page.wait_for_url("**/destinations/dst_*/")
    destination = Destination.objects.get(organization=alice.org, name="Ops alerts")
    assert destination.template == "slack" and destination.url == receiver.url
    expect(page.locator(".message.success")).to_have_text("Destination “Ops alerts” created.")

    # A test event: the attempt appears on the page by itself (the live region refreshes).
    _answer(receiver, 200)
    page.click("text=Send test event")
    page.wait_for_url(f"**/destinations/{destination.pk}/")
    expect(_attempt_rows(page, "success")).to_have_count(1)
    expect(_attempt_rows(page, "success").first.locator("[data-response-status]")).to_have_text("200")
    assert '"text"' in receiver.requests[0].body.decode()  # the Slack body shape
    shot(page, "destination-detail")

    # The receiver fails: the first attempt and its retry fail, the breaker opens at 2 and the
    # delivery, out of retries, becomes a dead letter.
    _answer(receiver, 500)
    page.click("text=Send test event")
    expect(page.locator("#circuit [data-circuit=open]")).to_be_visible()
    expect(page.locator("#dead-letters tr.dead-letter")).to_have_count(1)
    expect(_attempt_rows(page, "failed")).to_have_count(2)
    expect(_attempt_rows(page, "failed").first.locator("[data-response-status]")).to_have_text("500")
    shot(page, "destination-detail-open-circuit")

    page.click("#circuit button:text('Reset')")
    expect(page.locator(".message.success")).to_contain_text("Circuit closed")
    expect(page.locator("#circuit [data-circuit=closed]")).to_be_visible()
    assert CircuitState.objects.get(destination=destination).state == CircuitStateValue.CLOSED

    # Back to 200: retrying the dead letter goes through the engine again and delivers.
    _answer(receiver, 200)
    dead_letter = DeadLetter.objects.get(destination=destination)
    page.click("#dead-letters tr.dead-letter button:text('Retry')")
    expect(page.locator(".message.success")).to_contain_text("retried")
    expect(_attempt_rows(page, "success")).to_have_count(2)
    expect(page.locator("#dead-letters tr.dead-letter")).to_have_count(0)
    assert Delivery.objects.get(pk=dead_letter.delivery_id).status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 4  # test (200), two failures (500), the retry (200)

    page.goto("/destinations/")
    expect(page.locator("table.destinations tbody tr")).to_have_count(1)
    expect(page.locator("table.destinations tbody tr")).to_contain_text("success 200")
    shot(page, "destination-list")


def test_pause_resume_and_delete_in_the_browser(page, alice):
    destination = services.destination_create(
        organization=alice.org, data={"name": "Short-lived", "type": "http", "url": "https://example.com/in"}
    )
    log_in(page, alice)
    page.goto("/destinations/new/")
    expect(page.locator(".choice-grid li")).to_have_count(8)
    shot(page, "destination-choose-type")
    page.goto(f"/destinations/{destination.pk}/edit/")
    expect(page.locator("#id_url")).to_have_value("https://example.com/in")
    shot(page, "destination-edit")
    page.goto(f"/destinations/{destination.pk}/")
    page.click("button:text('Pause')")
    expect(page.locator("h1 [data-status=paused]")).to_be_visible()
    page.click("button:text('Resume')")
    expect(page.locator("h1 [data-status=active]")).to_be_visible()
    page.click("a:text('Delete')")
    page.wait_for_url("**/delete/")
    page.click("button:text('Delete destination')")
    page.wait_for_url("**/destinations/")
    expect(page.locator(".message.success")).to_contain_text("deleted")
    assert not Destination.objects.filter(pk=destination.pk).exists()


# --- the dashboard, with a day of demo traffic ---------------------------------------------


def seed_demo_traffic(org) -> None:
    """A believable day: seven destinations, a few thousand attempts over the last 24 hours,
    one endpoint whose breaker opened an hour ago and left dead letters behind."""
    rng = random.Random(7)
    aws = {"region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "demo-secret-key"}
    specs = [
        ("Billing API", {"type": "http", "url": "https://billing.acme.dev/webhooks/hookstream"}, 0.997, 120),
        ("Slack #alerts", {"template": "slack", "url": "https://hooks.slack.com/services/T0/B0/demo"}, 1.0, 180),
        (
            "Orders queue",
            {"type": "sqs", "provider_config": {"queue_url": "https://sqs.eu-west-1.amazonaws.com/1/orders", **aws}},
            1.0,
            45,
        ),
        ("Event archive", {"type": "s3", "provider_config": {"bucket": "acme-events", **aws}}, 1.0, 60),
        (
            "PagerDuty on-call",
            {"template": "pagerduty", "provider_config": {"routing_key": "R0UTINGKEYDEMO0000"}},
            0.995,
            260,
        ),
        (
            "Analytics stream",
            {
                "type": "kafka",
                "provider_config": {"rest_url": "https://kafka.acme.dev", "cluster_id": "lkc-1", "topic": "events"},
            },
            0.997,
            90,
        ),
        ("Legacy CRM", {"type": "http", "url": "https://crm.legacy.acme.dev/hooks"}, 0.97, 700),
    ]
    now = timezone.now()
    events, deliveries, attempts, dead = [], [], [], []
    destinations = {}
    failure = {
        "Billing API": (500, "HTTP 500 Internal Server Error"),
        "PagerDuty on-call": (429, "HTTP 429 Too Many Requests (Retry-After: 30)"),
        "Analytics stream": (503, "REST proxy answered 503 (error_code 50301)"),
        "Legacy CRM": (502, "HTTP 502 Bad Gateway from crm.legacy.acme.dev"),
    }
    for name, data, success, latency in specs:
        destination = services.destination_create(organization=org, data={"name": name, **data})
        destinations[name] = destination
        per_hour = rng.randint(6, 24)
        for hour in range(24, 0, -1):
            busy = 1.6 if 8 <= (now - timedelta(hours=hour)).hour <= 18 else 0.6
            for _ in range(int(per_hour * busy * rng.uniform(0.7, 1.3))):
                at = now - timedelta(hours=hour) + timedelta(seconds=rng.uniform(0, 3600))
                if at > now:
                    continue
                failing = name == "Legacy CRM" and at > now - timedelta(minutes=45)
                code, error = failure.get(name, (500, "HTTP 500"))
                ok = not failing and rng.random() < success
                body = b'{"type": "order.created"}'
                event = Event(organization=org, body=body, body_size=len(body), received_at=at, created_at=at)
                delivery = Delivery(
                    organization=org,
                    event=event,
                    destination=destination,
                    status=DeliveryStatus.SUCCEEDED if ok else DeliveryStatus.DEAD,
                    attempt_count=1,
                    created_at=at,
                    completed_at=at,
                    last_error="" if ok else error,
                )
                events.append(event)
                deliveries.append(delivery)
                attempts.append(
                    DeliveryAttempt(
                        organization=org,
                        delivery=delivery,
                        event=event,
                        destination=destination,
                        attempt_number=1,
                        status="success" if ok else "failed",
                        response_status=200 if ok else code,
                        duration_ms=int(rng.lognormvariate(0, 0.45) * latency),
                        error="" if ok else error,
                        is_dlq=not ok,
                        trigger_type=TriggerType.INITIAL,
                        created_at=at,
                    )
                )
                if not ok:
                    dead.append(
                        DeadLetter(
                            organization=org,
                            delivery=delivery,
                            destination=destination,
                            event=event,
                            reason="retries_exhausted",
                            last_error=error,
                            created_at=at,
                        )
                    )
    Event.objects.bulk_create(events, batch_size=1000)
    Delivery.objects.bulk_create(deliveries, batch_size=1000)
    DeliveryAttempt.objects.bulk_create(attempts, batch_size=1000)
    DeadLetter.objects.bulk_create(dead, batch_size=1000)
    CircuitState.objects.filter(destination=destinations["Legacy CRM"]).update(
        state=CircuitStateValue.OPEN, failure_count=5, opened_at=now - timedelta(minutes=38)
    )
    services.destination_update(destination=destinations["Analytics stream"], data={"status": "paused"})


def test_the_dashboard_with_a_day_of_traffic(page, alice):
    Organization.objects.filter(pk=alice.org.pk).update(name="Acme")  # the README's demo company
    seed_demo_traffic(alice.org)
    log_in(page, alice)
    page.goto("/")
    assert page.locator("#stat-circuits .value").inner_text() == "1"
    expect(page.locator("#open-circuits tbody tr").first).to_contain_text("Legacy CRM")
    expect(page.locator("#dead-letters-by-destination tbody tr").first).to_contain_text("Legacy CRM")
    expect(page.locator("#recent-failures tbody tr")).to_have_count(6)
    assert page.locator(".hours .hour").count() == 24
    assert page.locator("#stat-success .value").inner_text().endswith("%")
    shot(page, "dashboard", docs="dashboard")
    page.goto("/destinations/")
    assert page.locator("table.destinations tbody tr").count() == 7
    shot(page, "destination-list-demo")
