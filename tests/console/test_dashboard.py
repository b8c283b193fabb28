"""The console dashboard: today's numbers, circuits not closed, recent failures."""

from __future__ import annotations

import re
from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeadLetter, DeliveryAttempt, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue
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
    assert _tile(html, "stat-events").startswith("Events today 0")
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
    assert _tile(html, "stat-events").startswith("Events today 5")
    assert _tile(html, "stat-deliveries").startswith("Deliveries today 5 4 delivered")
    assert _tile(html, "stat-success") == "Success rate 80.0% 4 of 5 attempts"
    assert _tile(html, "stat-latency") == "Latency p50 / p95 60 / 900 ms"
    assert _tile(html, "stat-dead-letters") == "Dead letters today 1"
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
    assert f"{now.hour:02d}:00 — 1 succeeded, 1 failed" in html


def test_the_dashboard_needs_a_login(db):
    response = Client().get(reverse("console:dashboard"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
