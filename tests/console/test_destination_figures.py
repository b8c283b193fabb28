"""The destinations list's success rate, p95 latency and dead letters over the last 24 hours,
read from the monitoring rollups (and the raw rows after them) for the page's rows only."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeadLetter, DeliveryAttempt
from monitoring import rollups
from monitoring.models import RollupState
from tests.factories import make_delivery, make_destination, make_event


def _client(tenant) -> Client:
    client = Client()
    client.force_login(tenant.user)
    return client


def _attempt(destination, status: str, ms: int, at, *, dead: bool = False) -> DeliveryAttempt:
    delivery = make_delivery(make_event(destination.organization), destination)
    attempt = DeliveryAttempt.objects.create(
        organization=destination.organization,
        delivery=delivery,
        event=delivery.event,
        destination=destination,
        attempt_number=1,
        status=status,
        duration_ms=ms,
        created_at=at,
    )
    if dead:
        DeadLetter.objects.create(
            organization=destination.organization,
            delivery=delivery,
            destination=destination,
            event=delivery.event,
            reason="retries_exhausted",
            created_at=at,
        )
    return attempt


def _row(html: str, name: str) -> dict[str, str]:
    row = html.split(f">{name}</a>")[1].split("</tr>")[0]
    cells = dict(re.findall(r'data-figure="([a-z0-9-]+)">(.*?)</td>', row, re.S))
    return {key: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", value)).strip() for key, value in cells.items()}


def test_it_shows_success_rate_p95_and_dead_letters_of_the_last_24_hours(alice, bob):
    now = timezone.now()
    billing = make_destination(alice.org, name="Billing")
    crm = make_destination(alice.org, name="CRM")
    make_destination(alice.org, name="Idle")
    two_hours_ago = now - timedelta(hours=2)
    for _ in range(9):
        _attempt(billing, "success", 40, two_hours_ago)
    _attempt(billing, "failed", 3000, two_hours_ago, dead=True)
    _attempt(crm, "failed", 80, now - timedelta(days=3), dead=True)  # older than the window
    _attempt(crm, "success", 80, now)  # after the rollups: read raw
    # Rolled up to a minute ago; Billing's figures then come from the rollups alone.
    RollupState.objects.create(name=rollups.STATE, rolled_until=now - timedelta(days=4))
    for _ in range(4):
        rollups.rollups_advance(now=now - timedelta(minutes=1))
    DeliveryAttempt.objects.filter(destination=billing).delete()
    DeadLetter.objects.filter(destination=billing).delete()
    bobs = make_destination(bob.org, name="Bob's hook")
    _attempt(bobs, "failed", 5, now, dead=True)

    html = _client(alice).get(reverse("console:destination-list")).content.decode()

    assert "Success (24 h)" in html and "Dead letters (24 h)" in html
    billing_row = _row(html, "Billing")
    assert billing_row["success"] == "90.0%" and billing_row["dead-letters"] == "1"
    assert 2500 <= int(billing_row["p95"].removesuffix(" ms")) <= 5000
    # One 80 ms attempt: p95 interpolated in its histogram bucket (50-100 ms).
    assert _row(html, "CRM") == {"success": "100.0%", "p95": "98 ms", "dead-letters": "0"}
    assert _row(html, "Idle") == {"success": "—", "p95": "—", "dead-letters": "0"}
    assert "Bob&#x27;s hook" not in html


def test_the_figures_cost_the_same_number_of_queries_for_one_destination_or_a_page(alice):
    now = timezone.now()
    RollupState.objects.create(name=rollups.STATE, rolled_until=now - timedelta(minutes=1))
    client = _client(alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("console:destination-list")).status_code == 200
        return len(captured.captured_queries)

    _attempt(make_destination(alice.org, name="First"), "success", 10, now)
    queries()  # the first request of the session also saves the session
    one = queries()
    for n in range(10):
        _attempt(make_destination(alice.org, name=f"Dest {n}"), "failed", 10, now, dead=True)
    assert queries() == one
