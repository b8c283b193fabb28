"""Metrics over time: beat's hourly rollups, and series that read rollups then raw rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import DeadLetter, DeliveryAttempt
from monitoring import rollups
from monitoring.models import DeliveryRollup, RollupState, VolumeRollup
from tests.factories import make_delivery, make_destination, make_event, make_source


def _attempt(org, destination, status, ms, at):
    delivery = make_delivery(make_event(org), destination)
    return DeliveryAttempt.objects.create(
        organization=org,
        delivery=delivery,
        event=delivery.event,
        destination=destination,
        attempt_number=1,
        status=status,
        duration_ms=ms,
        created_at=at,
    )


@pytest.fixture
def history(alice, bob):
    now = timezone.now().replace(second=0, microsecond=0)
    # Early in its hour, so that the ten minutes of events below stay in one hour.
    three_hours_ago = (now - timedelta(hours=3)).replace(minute=10)
    source = make_source(alice.org, name="Shop")
    destination = make_destination(alice.org, name="Billing")
    for minutes in range(10):
        make_event(alice.org, source=source, received_at=three_hours_ago + timedelta(minutes=minutes))
    for ms in (20, 40, 60, 80):
        _attempt(alice.org, destination, "success", ms, three_hours_ago)
    failed = _attempt(alice.org, destination, "failed", 3000, three_hours_ago)
    DeadLetter.objects.create(
        organization=alice.org,
        delivery=failed.delivery,
        destination=destination,
        event=failed.event,
        reason="retries_exhausted",
        created_at=three_hours_ago,
    )
    _attempt(bob.org, make_destination(bob.org), "success", 10, three_hours_ago)  # another tenant
    return {"now": now, "at": three_hours_ago, "source": source, "destination": destination}


def test_it_rolls_up_incrementally_and_never_counts_twice(alice, history):
    RollupState.objects.create(name=rollups.STATE, rolled_until=history["at"] - timedelta(hours=1))

    rollups.rollups_advance(now=history["at"] + timedelta(minutes=5))  # half of the events
    rollups.rollups_advance(now=history["now"])
    rollups.rollups_advance(now=history["now"])  # nothing new

    hour = history["at"].replace(minute=0)
    row = DeliveryRollup.objects.get(destination=history["destination"], bucket=hour)
    assert (row.attempt_count, row.success_count, row.failure_count, row.dead_letter_count) == (5, 4, 1, 1)
    assert row.duration_sum_ms == 3200 and sum(row.latency_histogram) == 5
    assert VolumeRollup.objects.get(source=history["source"], bucket=hour).event_count == 10


def test_it_serves_series_from_rollups_and_the_raw_tail(api, alice, history):
    RollupState.objects.create(name=rollups.STATE, rolled_until=history["at"] - timedelta(hours=1))
    rollups.rollups_advance(now=history["now"])
    # After the rollup point: read raw (no beat has run since).
    _attempt(alice.org, history["destination"], "failed", 5, timezone.now())
    after = (history["at"] - timedelta(hours=1)).isoformat()

    deliveries = api.get("/v1/metrics/deliveries", {"after": after, "granularity": "hour"}).json()
    volume = api.get("/v1/metrics/volume", {"after": after}).json()
    latency = api.get("/v1/metrics/latency", {"after": after, "destination_id": history["destination"].id}).json()

    points = deliveries["series"]
    assert deliveries["granularity"] == "hour" and len(points) == 2
    assert points[0] == {
        "bucket": history["at"].replace(minute=0).isoformat().replace("+00:00", "Z"),
        "destination_id": history["destination"].id,
        "destination_name": "Billing",
        "delivery_count": 5,
        "success_count": 4,
        "failure_count": 1,
        "dead_letter_count": 1,
    }
    assert points[1]["failure_count"] == 1 and points[1]["delivery_count"] == 1
    mine = [p for p in volume["series"] if p["source_id"] == history["source"].id]
    assert mine == [
        {
            "bucket": history["at"].replace(minute=0).isoformat().replace("+00:00", "Z"),
            "source_id": history["source"].id,
            "source_name": "Shop",
            "event_count": 10,
        }
    ]
    first = latency["series"][0]
    assert first["count"] == 5 and 25 <= first["p50_ms"] <= 100 and 2500 <= first["p99_ms"] <= 5000
    day = api.get("/v1/metrics/deliveries", {"after": after, "granularity": "day"}).json()["series"]
    assert sum(p["delivery_count"] for p in day) == 6


def test_it_answers_minutes_from_raw_rows_and_refuses_bad_ranges(api, alice, history):
    after = (history["at"] - timedelta(minutes=1)).isoformat()
    before = (history["at"] + timedelta(minutes=20)).isoformat()
    body = api.get("/v1/metrics/volume", {"after": after, "before": before, "granularity": "minute"}).json()
    assert len(body["series"]) == 10 and {p["event_count"] for p in body["series"]} == {1}

    assert api.get("/v1/metrics/volume", {"granularity": "week"}).status_code == 400
    assert api.get("/v1/metrics/volume", {"after": "yesterday"}).status_code == 400
    old = (timezone.now() - timedelta(days=5)).isoformat()
    assert (
        api.get(
            "/v1/metrics/latency",
            {
                "after": old,
                "before": (timezone.now() - timedelta(days=4, hours=12)).isoformat(),
                "granularity": "minute",
            },
        ).status_code
        == 400
    )


def test_it_answers_the_hosted_overview_fields(api, alice, history):
    body = api.get("/v1/metrics/overview").json()

    assert {
        "events_today",
        "events_this_week",
        "active_sources",
        "deliveries_today",
        "success_today",
        "failed_today",
        "success_rate_today",
        "dlq_count",
        "active_destinations",
        "open_issues",
    } <= set(body)
    assert body["active_sources"] == 1 and body["active_destinations"] == 1 and body["dlq_count"] == 1
    assert body["open_issues"] == 0
    if body["deliveries_today"]:
        assert body["success_rate_today"] == round(body["success_today"] / body["deliveries_today"] * 100, 2)


def test_histogram_quantile_interpolates_within_a_bucket():
    histogram = [0] * (len(rollups.LATENCY_BOUNDS_MS) + 1)
    histogram[4] = 10  # ten attempts between 50 and 100 ms
    assert rollups.histogram_quantile(histogram, 0.5) == 75
    assert rollups.histogram_quantile([], 0.5) is None
