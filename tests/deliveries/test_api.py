"""The delivery API: attempts, every retry endpoint, replay jobs, dead letters, test send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, ReplayJob
from tests.deliveries.receiver import wait_until
from tests.factories import make_delivery, make_destination, make_event, make_source

pytestmark = pytest.mark.django_db


def _dead_delivery(org, destination, receiver):
    """A delivery that failed into the dead letter queue (retry_max_attempts=1, no wait)."""
    receiver.script.extend([(500, {}, b"no"), (500, {}, b"no")])
    delivery = make_delivery(make_event(org), destination)
    process_delivery(delivery.id)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    return delivery


@pytest.fixture
def destination(alice, receiver):
    return make_destination(alice.org, url=receiver.url, retry_max_attempts=1, retry_intervals=[0])


def test_it_lists_attempts_newest_first_with_every_field(api, alice, destination, receiver):
    first = make_delivery(make_event(alice.org), destination)
    second = make_delivery(make_event(alice.org), destination)
    process_delivery(first.id)
    process_delivery(second.id)

    response = api.get("/v1/delivery-attempts")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"delivery_attempts", "cursor", "has_more"}
    rows = body["delivery_attempts"]
    assert [r["event_id"] for r in rows] == [second.event_id, first.event_id]
    assert set(rows[0]) >= {
        "id", "event_id", "destination_id", "connection_id", "attempt_number", "status", "request_url",
        "request_method", "request_headers", "request_body_size", "response_status", "response_headers",
        "response_body", "duration_ms", "error", "next_retry_at", "is_dlq", "dlq_at", "trigger_type", "created_at",
    }  # fmt: skip
    assert rows[0]["created_at"].endswith("Z")


def test_it_filters_and_paginates_attempts(api, alice, destination, receiver):
    ok = make_delivery(make_event(alice.org), destination)
    process_delivery(ok.id)
    dead = _dead_delivery(alice.org, destination, receiver)

    def ids(query):
        response = api.get("/v1/delivery-attempts" + query)
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["delivery_attempts"]]

    assert len(ids(f"?event_id={dead.event_id}")) == 2
    assert len(ids("?status=failed")) == 2 and len(ids("?status=success")) == 1
    assert len(ids("?is_dlq=true")) == 1 and len(ids("?is_dlq=false")) == 2
    assert len(ids("?is_dlq=1")) == 1 and len(ids("?is_dlq=0")) == 2  # the hosted dead-letter recipe
    assert len(ids(f"?destination_id={destination.id}")) == 3
    assert ids("?destination_id=dst_other") == []

    page = api.get("/v1/delivery-attempts?limit=2").json()
    assert page["has_more"] is True and len(page["delivery_attempts"]) == 2
    rest = api.get(f"/v1/delivery-attempts?limit=2&cursor={page['cursor']}").json()
    assert rest["has_more"] is False and len(rest["delivery_attempts"]) == 1

    bad = api.get("/v1/delivery-attempts?status=exploded")
    assert bad.status_code == 400 and "status" in bad.json()["details"]
    assert api.get("/v1/delivery-attempts?is_dlq=maybe").status_code == 400


def test_it_scopes_attempts_to_the_organization(api, alice, bob, destination):
    delivery = make_delivery(make_event(alice.org), destination)
    process_delivery(delivery.id)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)

    assert api.get(f"/v1/delivery-attempts/{attempt.id}").json()["id"] == attempt.id
    other = bob.client()
    assert other.get(f"/v1/delivery-attempts/{attempt.id}").status_code == 404
    assert other.post(f"/v1/delivery-attempts/{attempt.id}/retry").status_code == 404
    assert other.get("/v1/delivery-attempts").json()["delivery_attempts"] == []
    assert other.post(f"/v1/events/{delivery.event_id}/retry").status_code == 404
    assert other.get(f"/v1/destinations/{destination.id}/dead-letters").status_code == 404
    assert other.post(f"/v1/destinations/{destination.id}/dead-letters/retry").status_code == 404
    assert other.post(f"/v1/destinations/{destination.id}/test").status_code == 404
    assert api.get("/v1/delivery-attempts/da_nope").json()["status"] == 404


def test_it_retries_a_dead_delivery_from_one_of_its_attempts(api, alice, destination, receiver):
    dead = _dead_delivery(alice.org, destination, receiver)
    attempt = DeliveryAttempt.objects.filter(delivery=dead).first()

    response = api.post(f"/v1/delivery-attempts/{attempt.id}/retry")

    assert response.status_code == 202
    assert response.json()["retried"] == [{"delivery_id": dead.id, "destination_id": destination.id}]
    assert not DeadLetter.objects.filter(delivery=dead).exists()
    process_delivery(dead.id)
    attempts = list(DeliveryAttempt.objects.filter(delivery=dead).order_by("attempt_number"))
    # A retry adds an attempt; the old ones are kept.
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert attempts[-1].trigger_type == "manual" and attempts[-1].status == "success"
    assert receiver.requests[-1].headers["X-hookstream-Delivery-Attempt"] == "3"


def test_it_refuses_to_retry_a_delivery_already_on_its_way(api, alice, destination):
    delivery = make_delivery(make_event(alice.org), destination)
    process_delivery(delivery.id)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    Delivery.objects.filter(pk=delivery.pk).update(status="in_flight")

    response = api.post(f"/v1/delivery-attempts/{attempt.id}/retry")

    assert response.status_code == 409
    assert "in_flight" in response.json()["error"]


def test_it_retries_every_failed_delivery_of_an_event(api, alice, receiver):
    event = make_event(alice.org)
    failing = make_destination(alice.org, url=receiver.url, retry_intervals=[3600])
    fine = make_destination(alice.org, url=receiver.url)
    receiver.script.append((500, {}, b""))
    waiting = make_delivery(event, failing)
    process_delivery(waiting.id)
    done = make_delivery(event, fine)
    process_delivery(done.id)
    assert Delivery.objects.get(pk=waiting.pk).status == "scheduled"

    response = api.post(f"/v1/events/{event.id}/retry")

    assert response.status_code == 202
    assert response.json() == {"retried": [{"delivery_id": waiting.id, "destination_id": failing.id}], "errors": []}
    process_delivery(waiting.id)
    assert Delivery.objects.get(pk=waiting.pk).status == "succeeded"
    assert api.post("/v1/events/evt_nope/retry").status_code == 404


def test_it_lists_a_destinations_dead_letters(api, alice, destination, receiver):
    dead = _dead_delivery(alice.org, destination, receiver)

    response = api.get(f"/v1/destinations/{destination.id}/dead-letters")

    assert response.status_code == 200
    rows = response.json()["dead_letters"]
    assert [(r["delivery_id"], r["reason"]) for r in rows] == [(dead.id, "retries_exhausted")]
    assert rows[0]["event_id"] == dead.event_id and "HTTP 500" in rows[0]["last_error"]


def test_it_validates_replay_and_dead_letter_retry_input(api, alice, destination):
    now = timezone.now()
    base = {"destination_id": destination.id, "from": (now - timedelta(hours=1)).isoformat(), "to": now.isoformat()}

    def post(extra):
        return api.post("/v1/replay", {**base, **extra}, format="json")

    assert post({"rate_limit": 101}).status_code == 400
    assert "max_events" in post({"max_events": 10001}).json()["details"]
    assert "from" in post({"from": "yesterday"}).json()["details"]
    assert "from" in post({"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}).json()["details"]
    assert "destination_id" in post({"destination_id": "dst_nope"}).json()["details"]
    assert "source_id" in post({"source_id": "src_nope"}).json()["details"]
    response = api.post(f"/v1/destinations/{destination.id}/dead-letters/retry", {"from": "soon"}, format="json")
    assert response.status_code == 400 and "from" in response.json()["details"]
    assert api.get("/v1/replay/rpl_nope").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_it_replays_a_time_range_as_a_job(api, alice, receiver, worker):
    source = make_source(alice.org)
    destination = make_destination(alice.org, url=receiver.url)
    now = timezone.now()
    inside = [make_event(alice.org, source=source, received_at=now - timedelta(minutes=m)) for m in (3, 2, 1)]
    make_event(alice.org, source=source, received_at=now - timedelta(hours=2))  # outside the range
    make_event(alice.org, received_at=now - timedelta(minutes=2))  # another source

    response = api.post(
        "/v1/replay",
        {
            "destination_id": destination.id,
            "source_id": source.id,
            "from": (now - timedelta(minutes=10)).isoformat(),
            "to": now.isoformat(),
            "rate_limit": 50,
            "max_events": 100,
        },
        format="json",
    )

    assert response.status_code == 202, response.json()
    job = response.json()["job"]
    assert job["id"].startswith("rpl_") and job["status"] == "running" and job["total"] == 3
    receiver.wait_for(3)

    def finished():
        body = api.get(f"/v1/replay/{job['id']}").json()["job"]
        return body if body["status"] == "completed" and body["succeeded"] == 3 else None

    body = wait_until(finished, message="job completed")
    assert body["processed"] == 3 and body["failed"] == 0 and body["completed_at"] and body["started_at"]
    assert [r.headers["X-hookstream-Event-Id"] for r in receiver.requests] == [e.id for e in inside]
    assert set(DeliveryAttempt.objects.values_list("trigger_type", flat=True)) == {"replay"}


@pytest.mark.django_db(transaction=True)
def test_it_retries_dead_letters_in_a_time_range_as_a_job(api, alice, receiver, worker):
    destination = make_destination(alice.org, url=receiver.url, retry_max_attempts=1, retry_intervals=[0])
    old = _dead_delivery(alice.org, destination, receiver)
    DeadLetter.objects.filter(delivery=old).update(created_at=timezone.now() - timedelta(days=2))
    recent = _dead_delivery(alice.org, destination, receiver)
    before = len(receiver.requests)

    response = api.post(
        f"/v1/destinations/{destination.id}/dead-letters/retry",
        {"from": (timezone.now() - timedelta(hours=1)).isoformat()},
        format="json",
    )

    assert response.status_code == 202, response.json()
    job = response.json()["job"]
    assert job["kind"] == "dead_letter_retry" and job["total"] == 1
    wait_until(lambda: Delivery.objects.get(pk=recent.pk).status == "succeeded", message="retried")
    assert Delivery.objects.get(pk=old.pk).status == "dead"
    assert len(receiver.requests) == before + 1
    wait_until(lambda: ReplayJob.objects.get(pk=job["id"]).status == "completed", message="job completed")


@pytest.mark.django_db(transaction=True)
def test_it_sends_a_test_event_through_the_real_pipeline(api, alice, receiver, worker):
    destination = make_destination(alice.org, url=receiver.url)

    response = api.post(f"/v1/destinations/{destination.id}/test")

    assert response.status_code == 202
    body = response.json()
    request = receiver.wait_for(1)[0]
    assert request.headers["X-hookstream-Event-Id"] == body["event_id"]
    assert b"hookstream.test" in request.body
    wait_until(lambda: Delivery.objects.get(pk=body["delivery_id"]).status == "succeeded", message="succeeded")
    assert api.post("/v1/destinations/dst_nope/test").status_code == 404
