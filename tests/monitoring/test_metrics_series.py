"""Metrics over time: beat's hourly rollups, and series that read rollups then raw rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from deliveries.models import DeadLetter, DeliveryAttempt
from monitoring import rollups, selectors
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


def _roll_up(history):
    RollupState.objects.create(name=rollups.STATE, rolled_until=history["at"] - timedelta(hours=1))
    rollups.rollups_advance(now=history["now"])


def test_totals_group_by_destination_or_not_at_all_and_read_rollups_not_raw_rows(alice, history):
    # A second destination, and an hour earlier: several rollup rows add up.
    other = make_destination(alice.org, name="Other")
    _attempt(alice.org, other, "success", 20, history["at"] - timedelta(minutes=30))
    _roll_up(history)
    # Gone from the raw tables: the figures below can only come from the rollups.
    DeliveryAttempt.objects.all().delete()
    DeadLetter.objects.all().delete()
    after, before = history["at"] - timedelta(hours=1), history["now"]

    everything = rollups.delivery_totals(organization=alice.org, after=after, before=before, by=())
    per_destination = rollups.delivery_totals(
        organization=alice.org, after=after, before=before, by=("destination",), destination_ids=[]
    )
    mine = rollups.delivery_totals(
        organization=alice.org,
        after=after,
        before=before,
        by=("destination",),
        destination_ids=[history["destination"].id],
    )

    assert set(everything) == {()}
    total = everything[()]
    assert (total["attempt_count"], total["success_count"], total["failure_count"]) == (6, 5, 1)
    assert total["dead_letter_count"] == 1 and sum(total["latency_histogram"]) == 6
    assert per_destination == {}
    assert list(mine) == [(history["destination"].id,)]
    billing = mine[(history["destination"].id,)]
    assert (billing["attempt_count"], billing["success_count"], billing["failure_count"]) == (5, 4, 1)
    assert billing["dead_letter_count"] == 1 and billing["duration_sum_ms"] == 3200
    by_hour = rollups.delivery_totals(organization=alice.org, after=after, before=before, by=("bucket",))
    assert sorted(values["attempt_count"] for values in by_hour.values()) == [1, 5]
    # The ten events of the source (the attempts' events are received now, after the range).
    assert rollups.volume_total(organization=alice.org, after=after, before=before) == 10


def test_the_overview_is_served_from_the_rollups(api, alice, history):
    # Rolled up a day ago at the same time of day: "today" must not count it ...
    _roll_up(history)
    today = api.get("/v1/metrics/overview").json()
    DeliveryAttempt.objects.filter(organization=alice.org).delete()
    again = api.get("/v1/metrics/overview").json()

    # ... and today's attempts, three hours old (or yesterday's, just after midnight), are read
    # from the rollups once rolled up: deleting the raw rows changes nothing.
    for field in ("deliveries_today", "success_today", "failed_today", "success_rate_today", "latency_ms"):
        assert again[field] == today[field], field
    if history["at"] >= selectors.start_of_today():
        assert (today["deliveries_today"], today["success_today"], today["failed_today"]) == (5, 4, 1)
        assert today["success_rate_today"] == 80.0 and today["success_rate"] == 0.8
        # The ten events of the source, and the five of the attempts (received now).
        assert today["events_today"] == 15 and today["dead_letters"] == 1


def test_dlq_count_is_counted_up_to_a_cap(api, alice, history, monkeypatch):
    destination = history["destination"]
    for _ in range(3):
        failed = _attempt(alice.org, destination, "failed", 10, timezone.now())
        DeadLetter.objects.create(
            organization=alice.org,
            delivery=failed.delivery,
            destination=destination,
            event=failed.event,
            reason="retries_exhausted",
        )
    assert api.get("/v1/metrics/overview").json()["dlq_count"] == 4

    monkeypatch.setattr(selectors, "DLQ_COUNT_CAP", 2)
    assert api.get("/v1/metrics/overview").json()["dlq_count"] == 2


def test_the_rollup_range_scans_use_the_created_at_brin_indexes(alice):
    if connection.vendor != "postgresql":
        pytest.skip("BRIN indexes exist on PostgreSQL only")
    failed = _attempt(alice.org, make_destination(alice.org), "failed", 10, timezone.now())
    # A day of attempts, appended in time order as they are in production.
    rows = 20_000
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO deliveries_deliveryattempt (id, organization_id, delivery_id, event_id, destination_id,
                attempt_number, status, request_url, request_method, request_headers, request_body_size,
                response_headers, response_body, duration_ms, error, is_dlq, trigger_type, created_at)
            SELECT 'da_t' || k, %(org)s, %(delivery)s, %(event)s, %(destination)s, 1, 'success', '', 'POST',
                '{}', 0, '{}', '', 10, '', false, 'initial', now() - (%(rows)s - k) * interval '4 seconds'
            FROM generate_series(1, %(rows)s) AS k
            """,
            {
                "org": alice.org.pk,
                "delivery": failed.delivery_id,
                "event": failed.event_id,
                "destination": failed.destination_id,
                "rows": rows,
            },
        )
        cursor.execute("ANALYZE deliveries_deliveryattempt")
        now = timezone.now()
        window = DeliveryAttempt.objects.filter(created_at__gte=now - timedelta(hours=2), created_at__lt=now)
        sql, params = window.values("organization_id", "destination_id", "created_at").query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Bitmap Index Scan on attempt_created_brin" in plan, plan
        # Dead letters get the same index (the rollup job reads them by the same range).
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'deadletter_created_brin'")
        assert "USING brin (created_at)" in cursor.fetchone()[0]
