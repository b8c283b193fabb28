"""The console dashboard: the range's numbers and chart, circuits not closed, recent failures."""

from __future__ import annotations

import re
from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeadLetter, DeliveryAttempt, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue
from intake.models import Event
from monitoring import rollups
from monitoring.models import RollupState
from tests.factories import make_delivery, make_destination, make_event


def _client(tenant) -> Client:
    client = Client()
    client.force_login(tenant.user)
    return client


def _tile(html: str, tile_id: str) -> str:
    block = html.split(f'id="{tile_id}">')[1].split('<div class="stat')[0].split("<section")[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block)).strip()


def _attempt(delivery, *, status: str, duration_ms: int, code: int, error: str = "", **fields):
    return DeliveryAttempt.objects.create(
        organization=delivery.organization,
        delivery=delivery,
        event=delivery.event,
        destination=delivery.destination,
        attempt_number=1,
        status=status,
        response_status=code,
        duration_ms=duration_ms,
        error=error,
        **fields,
    )


def test_an_empty_organization_gets_dashes_not_errors(alice):
    page = _client(alice).get(reverse("console:dashboard"))
    assert page.status_code == 200
    html = page.content.decode()
    assert _tile(html, "stat-events").startswith("Events 0")
    assert "Success rate —" in _tile(html, "stat-success")
    assert "Every circuit is closed." in html and "No failed attempts." in html
    assert 'data-refresh="30"' in html  # reloads itself while visible (console.js)


def test_it_shows_todays_numbers_open_circuits_and_recent_failures(alice, bob):
    healthy = make_destination(alice.org, name="Billing API")
    broken = make_destination(alice.org, name="Legacy CRM")
    CircuitState.objects.filter(destination=broken).update(
        state=CircuitStateValue.OPEN, failure_count=7, opened_at=timezone.now() - timedelta(minutes=3)
    )
    for duration in (40, 50, 60, 70):
        delivery = make_delivery(make_event(alice.org), healthy, status=DeliveryStatus.SUCCEEDED)
        _attempt(delivery, status="success", duration_ms=duration, code=200)
    failed = make_delivery(make_event(alice.org), broken, status=DeliveryStatus.DEAD)
    _attempt(failed, status="failed", duration_ms=900, code=502, error="HTTP 502 Bad Gateway")
    DeadLetter.objects.create(
        organization=alice.org, delivery=failed, destination=broken, event=failed.event, reason="retries_exhausted"
    )
    # Bob's traffic never shows on alice's dashboard.
    bobs = make_destination(bob.org, name="Bob's secret hook")
    CircuitState.objects.filter(destination=bobs).update(state=CircuitStateValue.OPEN)
    _attempt(make_delivery(make_event(bob.org), bobs), status="failed", duration_ms=5, code=500, error="bob's error")

    html = _client(alice).get(reverse("console:dashboard")).content.decode()
    assert _tile(html, "stat-events").startswith("Events 5")
    assert _tile(html, "stat-deliveries").startswith("Attempts 5 4 delivered")
    assert _tile(html, "stat-success") == "Success rate 80.0% 4 of 5 attempts"
    # From the latency histogram (25-50, 50-100 and 500-1000 ms buckets), interpolated.
    assert _tile(html, "stat-latency") == "Latency p50 / p95 62 / 875 ms"
    assert _tile(html, "stat-dead-letters") == "Dead letters 1"
    assert _tile(html, "stat-circuits") == "Open circuits 1"
    circuits = html.split('id="open-circuits"')[1].split("</section>")[0]
    assert "Legacy CRM" in circuits and 'data-circuit="open"' in circuits and "Billing API" not in circuits
    waiting = html.split('id="dead-letters-by-destination"')[1].split("</table>")[0]
    assert "Legacy CRM" in waiting and ">1<" in waiting and "Billing API" not in waiting
    failures = html.split('id="recent-failures"')[1].split("</section>")[0]
    assert "HTTP 502 Bad Gateway" in failures and reverse("console:destination-detail", args=[broken.pk]) in failures
    assert "bob&#x27;s error" not in html and "Bob&#x27;s secret hook" not in html


def test_the_hourly_chart_counts_attempts_per_hour(alice):
    destination = make_destination(alice.org)
    now = timezone.now()
    delivery = make_delivery(make_event(alice.org), destination)
    _attempt(delivery, status="success", duration_ms=10, code=200, created_at=now)
    _attempt(delivery, status="failed", duration_ms=10, code=500, created_at=now)
    html = _client(alice).get(reverse("console:dashboard")).content.decode()
    assert f"{now:%b} {now.day}, {now.hour:02d}:00 — 1 succeeded, 1 failed" in html


def test_the_dashboard_needs_a_login(db):
    response = Client().get(reverse("console:dashboard"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_range_selector_changes_the_figures_and_the_chart(alice):
    destination = make_destination(alice.org)
    now = timezone.now()
    for days, status in ((0, "success"), (3, "failed"), (20, "success"), (40, "success")):
        delivery = make_delivery(make_event(alice.org, received_at=now - timedelta(days=days)), destination)
        _attempt(delivery, status=status, duration_ms=10, code=200, created_at=now - timedelta(days=days))
    client = _client(alice)

    figures = {}
    for key in ("24h", "7d", "30d"):
        page = client.get(reverse("console:dashboard"), {"range": key})
        html = page.content.decode()
        figures[key] = (_tile(html, "stat-events"), _tile(html, "stat-deliveries").split(" delivered")[0])
        assert f'href="?range={key}" aria-current="true"' in html
        assert len(page.context["bars"]) == {"24h": 24, "7d": 28, "30d": 30}[key]
        assert (
            sum(bar["ok"] + bar["failed"] for bar in page.context["bars"])
            == page.context["numbers"]["attempts"]["total"]
        )

    assert figures == {
        "24h": ("Events 1", "Attempts 1 1"),
        "7d": ("Events 2", "Attempts 2 1"),
        "30d": ("Events 3", "Attempts 3 2"),
    }
    # An unknown range shows the default one.
    assert client.get(reverse("console:dashboard"), {"range": "1y"}).context["chosen"].key == "24h"


def test_the_dashboard_reads_rolled_up_hours_from_the_rollups(alice):
    destination = make_destination(alice.org)
    now = timezone.now()
    two_days_ago = now - timedelta(days=2)
    for status in ("success", "success", "failed"):
        delivery = make_delivery(make_event(alice.org, received_at=two_days_ago), destination)
        _attempt(delivery, status=status, duration_ms=30, code=200, created_at=two_days_ago)
    RollupState.objects.create(name=rollups.STATE, rolled_until=two_days_ago - timedelta(hours=1))
    rollups.rollups_advance(now=now - timedelta(minutes=1))
    rollups.rollups_advance(now=now - timedelta(minutes=1))
    # The raw rows are gone; the rolled-up hours still show.
    DeliveryAttempt.objects.all().delete()
    Event.objects.all().delete()

    page = _client(alice).get(reverse("console:dashboard"), {"range": "7d"})
    html = page.content.decode()
    assert _tile(html, "stat-events").startswith("Events 3")
    assert _tile(html, "stat-success") == "Success rate 66.7% 2 of 3 attempts"
    assert sum(bar["failed"] for bar in page.context["bars"]) == 1
