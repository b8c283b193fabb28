"""Issues: failures grouped per destination and kind, counted, resolved when quiet; the API."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from deliveries.engine import process_delivery
from deliveries.models import Delivery, DeliveryAttempt
from monitoring import services, tasks
from monitoring.classify import error_type_of
from monitoring.models import Issue
from tests.factories import make_delivery, make_destination, make_event


def _attempt_now(delivery_id: str, capture) -> None:
    """One attempt, synchronously, with the engine's after-commit signals run."""
    Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
    with capture(execute=True):
        process_delivery(delivery_id)


@pytest.mark.django_db
def test_it_opens_one_issue_and_counts_every_failure_against_a_failing_receiver(
    alice, receiver, django_capture_on_commit_callbacks
):
    receiver.default = (503, {}, b"down for maintenance")
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_enabled=False, retry_intervals=[1])
    deliveries = [make_delivery(make_event(alice.org), destination) for _ in range(3)]

    for count, delivery in enumerate(deliveries, start=1):
        _attempt_now(delivery.id, django_capture_on_commit_callbacks)
        issue = Issue.objects.get(destination=destination)  # one issue, however many failures
        assert issue.occurrence_count == count
    _attempt_now(deliveries[0].id, django_capture_on_commit_callbacks)  # its retry fails too

    issue = Issue.objects.get(destination=destination)
    assert len(receiver.requests) == 4
    assert issue.error_type == "http_5xx" and issue.status == "open" and issue.occurrence_count == 4
    assert issue.message == DeliveryAttempt.objects.filter(destination=destination).latest("created_at").error
    latest = list(
        DeliveryAttempt.objects.filter(destination=destination).order_by("-created_at").values_list("id", flat=True)
    )
    assert issue.recent_attempt_ids == latest
    assert issue.first_seen_at < issue.last_seen_at


@pytest.mark.django_db
def test_it_keeps_kinds_and_destinations_apart(alice, receiver, django_capture_on_commit_callbacks):
    receiver.script.extend([(500, {}, b"boom"), (404, {}, b"gone")])
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_enabled=False)
    closed = make_destination(alice.org, url="http://127.0.0.1:9/", circuit_breaker_enabled=False)

    for target in (destination, destination, closed):
        _attempt_now(make_delivery(make_event(alice.org), target).id, django_capture_on_commit_callbacks)

    kinds = sorted(Issue.objects.values_list("destination_id", "error_type", "occurrence_count"))
    assert kinds == sorted(
        [(destination.id, "http_5xx", 1), (destination.id, "http_4xx", 1), (closed.id, "connection", 1)]
    )


@pytest.mark.django_db
def test_it_opens_a_circuit_open_issue_when_the_circuit_opens(alice, receiver, django_capture_on_commit_callbacks):
    receiver.default = (500, {}, b"boom")
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_threshold=2)

    for _ in range(2):
        _attempt_now(make_delivery(make_event(alice.org), destination).id, django_capture_on_commit_callbacks)

    circuit = Issue.objects.get(destination=destination, error_type="circuit_open")
    assert circuit.status == "open" and "2 consecutive failures" in circuit.message
    assert Issue.objects.get(destination=destination, error_type="http_5xx").occurrence_count == 2


@pytest.mark.django_db
def test_it_resolves_a_recovered_destination_after_its_window(alice, receiver, django_capture_on_commit_callbacks):
    receiver.script.append((500, {}, b"boom"))  # fails once, then answers 200
    destination = make_destination(alice.org, url=receiver.url, retry_intervals=[1])
    delivery = make_delivery(make_event(alice.org), destination)
    _attempt_now(delivery.id, django_capture_on_commit_callbacks)
    _attempt_now(delivery.id, django_capture_on_commit_callbacks)
    assert Delivery.objects.get(pk=delivery.id).status == "succeeded"
    issue = Issue.objects.get(destination=destination)

    with override_settings(HOOKSTREAM_ISSUE_RESOLVE_MINUTES=0.01):  # 0.6 s
        tasks.minute()
        assert Issue.objects.get(pk=issue.id).status == "open"  # not quiet long enough yet
        time.sleep(0.7)
        tasks.minute()

    issue.refresh_from_db()
    assert issue.status == "resolved" and issue.resolved_at is not None
    # The next failure of that kind opens a new issue.
    receiver.script.append((500, {}, b"boom again"))
    _attempt_now(make_delivery(make_event(alice.org), destination).id, django_capture_on_commit_callbacks)
    assert Issue.objects.filter(destination=destination).count() == 2


def test_it_classifies_failures():
    assert error_type_of(response_status=502, error="HTTP 502") == "http_5xx"
    assert error_type_of(response_status=429, error="HTTP 429") == "http_4xx"
    assert error_type_of(response_status=None, error="timed out after 100 ms: read") == "timeout"
    assert error_type_of(response_status=None, error="connection error: refused") == "connection"
    assert error_type_of(response_status=None, error="SSRF guard: 10.0.0.1 is private") == "refused"
    assert error_type_of(response_status=None, error="NoSuchBucket") == "provider_error"


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def issues(alice, bob):
    destination = make_destination(alice.org, name="Backend")
    other = make_destination(alice.org)
    now = timezone.now()
    opened, _ = services.issue_record(
        organization_id=alice.org.id, destination_id=destination.id, error_type="http_5xx", message="HTTP 500", now=now
    )
    services.issue_record(
        organization_id=alice.org.id, destination_id=destination.id, error_type="http_5xx", message="HTTP 502"
    )
    acked, _ = services.issue_record(
        organization_id=alice.org.id, destination_id=other.id, error_type="timeout", message="timed out"
    )
    services.issue_update(issue=acked, status="acknowledged")
    gone, _ = services.issue_record(
        organization_id=alice.org.id, destination_id=other.id, error_type="http_4xx", message="HTTP 410"
    )
    services.issue_update(issue=gone, status="resolved")
    services.issue_record(
        organization_id=bob.org.id, destination_id=make_destination(bob.org).id, error_type="http_5xx", message="x"
    )
    return {"open": opened, "acknowledged": acked, "resolved": gone, "destination": destination, "other": other}


def test_it_lists_open_issues_by_default_in_the_cursor_envelope(api, issues):
    body = api.get("/v1/issues").json()

    assert set(body) == {"issues", "cursor", "has_more"}
    assert [i["id"] for i in body["issues"]] == [issues["open"].id]
    item = body["issues"][0]
    assert item["id"].startswith("iss_") and item["destination_name"] == "Backend"
    assert item["occurrence_count"] == 2 and item["message"] == "HTTP 502" and item["error_type"] == "http_5xx"
    assert {"first_seen_at", "last_seen_at", "status", "destination_id"} <= set(item)


def test_it_filters_issues_by_status_and_destination(api, issues):
    def ids(query):
        return {i["id"] for i in api.get(f"/v1/issues?{query}").json()["issues"]}

    assert ids("status=all") == {issues[k].id for k in ("open", "acknowledged", "resolved")}
    assert ids("status=acknowledged") == {issues["acknowledged"].id}
    assert ids("status=resolved") == {issues["resolved"].id}
    assert ids(f"status=all&destination_id={issues['other'].id}") == {issues["acknowledged"].id, issues["resolved"].id}
    assert api.get("/v1/issues?status=maybe").status_code == 400


def test_it_summarises_issues_per_status(api, issues):
    assert api.get("/v1/issues/summary").json() == {"open": 1, "acknowledged": 1, "resolved": 1}


def test_it_shows_an_issue_with_its_recent_attempts_and_hides_other_tenants(api, bob, issues):
    body = api.get(f"/v1/issues/{issues['open'].id}").json()
    assert body["recent_attempt_ids"] == [] and body["occurrence_count"] == 2
    assert bob.client().get(f"/v1/issues/{issues['open'].id}").status_code == 404


def test_it_acknowledges_snoozes_and_resolves_an_issue(api, issues):
    url = f"/v1/issues/{issues['open'].id}"
    until = (timezone.now() + timedelta(hours=2)).isoformat()

    body = api.patch(url, {"status": "acknowledged", "snoozed_until": until}, format="json").json()
    assert body["status"] == "acknowledged" and body["acknowledged_at"] and body["snoozed_until"]
    body = api.patch(url, {"status": "resolved"}, format="json").json()
    assert body["status"] == "resolved" and body["resolved_at"]
    assert api.patch(url, {"status": "paused"}, format="json").status_code == 400
    assert api.patch(url, {}, format="json").status_code == 400


def test_it_refuses_to_reopen_when_another_issue_of_the_kind_is_open(api, alice, issues):
    services.issue_record(
        organization_id=alice.org.id, destination_id=issues["other"].id, error_type="http_4xx", message="HTTP 404"
    )
    response = api.patch(f"/v1/issues/{issues['resolved'].id}", {"status": "open"}, format="json")
    assert response.status_code == 409


@pytest.mark.django_db
def test_it_retries_the_failed_deliveries_of_an_issue(api, alice, receiver, django_capture_on_commit_callbacks):
    receiver.script.extend([(500, {}, b"x"), (500, {}, b"x")])
    destination = make_destination(alice.org, url=receiver.url, retry_max_attempts=1, retry_intervals=[0])
    dead = make_delivery(make_event(alice.org), destination)
    _attempt_now(dead.id, django_capture_on_commit_callbacks)
    _attempt_now(dead.id, django_capture_on_commit_callbacks)
    assert Delivery.objects.get(pk=dead.id).status == "dead"
    issue = Issue.objects.get(destination=destination, error_type="http_5xx")

    response = api.post(f"/v1/issues/{issue.id}/retry")

    assert response.status_code == 202
    assert response.json() == {"retried": [{"delivery_id": dead.id, "destination_id": destination.id}], "errors": []}
    _attempt_now(dead.id, django_capture_on_commit_callbacks)
    assert Delivery.objects.get(pk=dead.id).status == "succeeded"
