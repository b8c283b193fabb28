"""Dedup: a duplicate inside the window answers with the original event and is not delivered
again; concurrent identical requests store exactly one event (a constraint, not a read)."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from deliveries.models import Delivery
from intake.models import Connection, DedupKey, Event
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest
from tests.support import require_postgres


def _connected_source(org, **fields):
    source = make_source(org, dedup_enabled=True, **fields)
    Connection.objects.create(organization=org, source=source, destination=make_destination(org))
    return source


def test_it_answers_a_duplicate_with_the_original_event_and_does_not_deliver_it_again(alice, client):
    source = _connected_source(alice.org, dedup_strategy="payload_hash")
    first = ingest(client, source, {"id": 1})
    again = ingest(client, source, {"id": 1})
    other = ingest(client, source, {"id": 2})
    assert first.status_code == again.status_code == other.status_code == 200
    assert "deduplicated" not in first.json()
    assert again.json() == {"event_id": first.json()["event_id"], "source_id": source.pk, "deduplicated": True}
    assert other.json()["event_id"] != first.json()["event_id"]
    assert Event.objects.count() == 2
    assert Delivery.objects.count() == 2
    source.refresh_from_db()
    assert source.event_count == 2


def test_it_dedups_on_a_header(alice, client):
    source = _connected_source(alice.org, dedup_strategy="header_field", dedup_field="X-Delivery-Id")
    first = ingest(client, source, {"n": 1}, HTTP_X_DELIVERY_ID="d-1")
    retry = ingest(client, source, {"n": 1, "retry": True}, HTTP_X_DELIVERY_ID="d-1")
    assert retry.json()["event_id"] == first.json()["event_id"] and retry.json()["deduplicated"]
    # Without the header there is nothing to dedup on: both are stored.
    ingest(client, source, {"n": 1})
    ingest(client, source, {"n": 1})
    assert Event.objects.count() == 3


def test_it_dedups_on_a_body_field(alice, client):
    source = _connected_source(alice.org, dedup_strategy="body_field", dedup_field="data.id")
    first = ingest(client, source, {"data": {"id": "obj_1"}, "attempt": 1})
    again = ingest(client, source, {"data": {"id": "obj_1"}, "attempt": 2})
    number = ingest(client, source, {"data": {"id": 1}})
    assert again.json()["event_id"] == first.json()["event_id"]
    assert number.json()["event_id"] != first.json()["event_id"]  # 1 is not "obj_1"
    assert Event.objects.count() == 2


def test_it_stores_a_duplicate_again_once_the_window_has_passed(alice, client):
    source = _connected_source(alice.org, dedup_strategy="payload_hash", dedup_window_seconds=60)
    first = ingest(client, source, {"id": 1}).json()["event_id"]
    DedupKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    later = ingest(client, source, {"id": 1}).json()
    assert "deduplicated" not in later and later["event_id"] != first
    # The key now belongs to the new event for a fresh window.
    assert ingest(client, source, {"id": 1}).json()["event_id"] == later["event_id"]
    assert DedupKey.objects.get().event_id == later["event_id"]
    assert Event.objects.count() == 2 and Delivery.objects.count() == 2


def test_it_does_not_dedup_across_sources(alice, client):
    one = _connected_source(alice.org, dedup_strategy="payload_hash")
    two = _connected_source(alice.org, dedup_strategy="payload_hash")
    assert ingest(client, one, {"id": 1}).json()["event_id"] != ingest(client, two, {"id": 1}).json()["event_id"]


@pytest.mark.django_db(transaction=True)
def test_it_stores_exactly_one_event_for_20_concurrent_identical_requests(alice):
    require_postgres()
    source = _connected_source(alice.org, dedup_strategy="payload_hash")
    start = threading.Barrier(20)
    answers, errors = [], []

    def send():
        try:
            client = Client()
            start.wait(timeout=10)
            response = ingest(client, source, {"id": "same"})
            answers.append((response.status_code, response.json()))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(answers) == 20
    assert {status for status, _ in answers} == {200}
    assert len({body["event_id"] for _, body in answers}) == 1
    assert sum(1 for _, body in answers if body.get("deduplicated")) == 19
    assert Event.objects.count() == 1
    assert Delivery.objects.count() == 1
    source.refresh_from_db()
    assert source.event_count == 1
