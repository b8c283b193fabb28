"""Fan-out: one Delivery per matching route in the event's transaction, filters applied,
enqueued only after commit; a route's transform is applied by the worker (in the sandbox)."""

import pytest
from django.utils import timezone

from deliveries import dispatch
from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, Delivery, DeliveryStatus
from intake.models import Connection, Event
from intake.transforms import TransformError, expression_errors, transform_apply
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest

ORDER = {"type": "order.created", "amount": 250, "customer": {"email": "ann@example.com"}, "items": [1, 2, 3]}


@pytest.fixture
def enqueued(monkeypatch):
    """The destination ids woken on the broker (recorded instead of sent)."""
    sent = []
    monkeypatch.setattr(dispatch, "destination_wake", lambda destination_id, force=False: sent.append(destination_id))
    return sent


def _connect(org, source, destination, **fields):
    return Connection.objects.create(organization=org, source=source, destination=destination, **fields)


def test_it_fans_out_to_three_destinations_with_one_filtered_out(
    alice, client, enqueued, django_capture_on_commit_callbacks
):
    source = make_source(alice.org)
    billing, crm, audit = (make_destination(alice.org) for _ in range(3))
    _connect(alice.org, source, billing, filter_rules=[{"field": "payload.amount", "op": "gte", "value": 100}])
    _connect(
        alice.org,
        source,
        crm,
        filter_rules=[{"field": "headers.x-topic", "op": "eq", "value": "orders"}],
        transform_expression='{"email": customer.email, "count": $count(items)}',
    )
    _connect(alice.org, source, audit, filter_rules=[{"field": "payload.type", "op": "eq", "value": "order.paid"}])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = ingest(client, source, ORDER, HTTP_X_TOPIC="orders")
        assert response.status_code == 200
        # Nothing is woken before the transaction commits.
        assert enqueued == []
    for callback in callbacks:
        callback()

    event = Event.objects.get()
    deliveries = {d.destination_id: d for d in Delivery.objects.filter(event=event)}
    assert set(deliveries) == {billing.pk, crm.pk}
    # Tenant code never runs in the ingest request: the transform is left to the worker.
    assert all(d.transformed_payload is None for d in deliveries.values())
    assert deliveries[crm.pk].transform_pending and not deliveries[billing.pk].transform_pending
    assert all(d.status == DeliveryStatus.PENDING and d.organization_id == alice.org.pk for d in deliveries.values())
    assert sorted(enqueued) == sorted(d.destination_id for d in deliveries.values())

    for delivery in deliveries.values():
        process_delivery(delivery.pk)
    after = {d.destination_id: d for d in Delivery.objects.filter(event=event)}
    assert after[billing.pk].transformed_payload is None
    assert after[crm.pk].transformed_payload == {"email": "ann@example.com", "count": 3}
    assert not after[crm.pk].transform_pending


def test_it_creates_no_delivery_for_paused_disabled_or_deleted_destinations(alice, client, enqueued):
    source = make_source(alice.org)
    live = make_destination(alice.org)
    paused = make_destination(alice.org, status="paused")
    disabled = make_destination(alice.org, status="disabled")
    deleted = make_destination(alice.org, deleted_at=timezone.now())
    for destination in (live, paused, disabled, deleted):
        _connect(alice.org, source, destination)
    _connect(alice.org, source, make_destination(alice.org), enabled=False)
    assert ingest(client, source, ORDER).status_code == 200
    assert list(Delivery.objects.values_list("destination_id", flat=True)) == [live.pk]


def test_it_dead_letters_a_failed_transform_at_delivery_and_still_accepts_the_event(
    alice, client, enqueued, django_capture_on_commit_callbacks
):
    source = make_source(alice.org)
    fine, broken, not_object = (make_destination(alice.org) for _ in range(3))
    _connect(alice.org, source, fine)
    _connect(alice.org, source, broken, transform_expression='$error("no customer id")')
    _connect(alice.org, source, not_object, transform_expression="items")
    with django_capture_on_commit_callbacks(execute=True):
        response = ingest(client, source, ORDER)
    assert response.status_code == 200
    # The ingest does not evaluate the transforms: every delivery is created and woken.
    assert sorted(enqueued) == sorted(Delivery.objects.values_list("destination_id", flat=True))
    for delivery in Delivery.objects.all():
        process_delivery(delivery.pk)
    by_destination = {d.destination_id: d for d in Delivery.objects.all()}
    assert by_destination[fine.pk].status != DeliveryStatus.DEAD
    for destination, message in ((broken, "no customer id"), (not_object, "JSON object")):
        delivery = by_destination[destination.pk]
        assert delivery.status == DeliveryStatus.DEAD
        assert message in delivery.last_error
        assert delivery.completed_at is not None
        # Nothing was sent: the transform failed before the first attempt.
        assert delivery.attempt_count == 0 and not delivery.attempts.exists()
        dead_letter = DeadLetter.objects.get(delivery=delivery)
        assert dead_letter.reason == "transform_failed" and message in dead_letter.last_error


def test_it_fans_out_non_json_bodies_on_request_fields(alice, client, enqueued):
    source = make_source(alice.org)
    put_only, json_only = make_destination(alice.org), make_destination(alice.org)
    _connect(alice.org, source, put_only, filter_rules=[{"field": "method", "op": "eq", "value": "PUT"}])
    _connect(alice.org, source, json_only, filter_rules=[{"field": "payload", "op": "exists", "value": True}])
    ingest(client, source, b"<xml/>", method="put", content_type="application/xml")
    assert list(Delivery.objects.values_list("destination_id", flat=True)) == [put_only.pk]


# --- the transform itself ------------------------------------------------------------------------


def test_it_applies_a_jsonata_transform():
    result = transform_apply('{"kind": type, "total": amount * 2, "first": items[0]}', ORDER)
    assert result == {"kind": "order.created", "total": 500, "first": 1}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('$error("boom")', "boom"),
        ("amount + customer", "must evaluate to a number"),
        ("items", "JSON object"),
        ("nothing_here", "JSON object"),
        ('"text"', "JSON object"),
        ("$sum", "JSON object"),
        ('{"f": $sum}', "not JSON"),
    ],
)
def test_it_raises_a_transform_error_at_run_time(expression, message):
    with pytest.raises(TransformError) as raised:
        transform_apply(expression, ORDER)
    assert message in str(raised.value)


def test_it_stops_a_runaway_transform():
    with pytest.raises(TransformError):
        transform_apply('($f := function($n) { $f($n + 1) }; {"x": $f(0)})', ORDER)


@pytest.mark.parametrize("expression", ['{"a": ', "$$$(", "{a: b", "[1,2"])
def test_it_refuses_an_expression_that_does_not_compile(expression):
    errors = expression_errors(expression)
    assert errors and errors[0].startswith("invalid JSONata")
