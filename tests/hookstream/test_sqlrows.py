"""``hookstream.sqlrows``: multi-row INSERTs that write what the ORM would."""

from django.db import connection
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, TriggerType
from hookstream import sqlrows
from hookstream.ids import new_id
from tests.factories import make_destination, make_event


def test_it_writes_several_rows_with_the_models_defaults(alice):
    event = make_event(alice.org)
    destination = make_destination(alice.org)
    now = timezone.now()
    rows = [
        {"id": new_id("dlv"), "organization_id": alice.org.pk, "event_id": event.pk, "destination_id": destination.pk}
        for _ in range(3)
    ]
    sql, params = sqlrows.insert_sql(Delivery, rows, now=now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    written = list(Delivery.objects.filter(event=event))
    assert sorted(d.pk for d in written) == sorted(row["id"] for row in rows)
    for delivery in written:
        assert delivery.status == DeliveryStatus.PENDING and delivery.trigger_type == TriggerType.INITIAL
        assert delivery.attempt_count == 0 and delivery.transformed_payload is None
        assert delivery.updated_at == now  # auto_now takes the time given
        assert delivery.last_error == "" and not delivery.transform_pending


def test_it_writes_an_instance_as_its_fields(alice):
    event = make_event(alice.org)
    copy = type(event)(
        **{**sqlrows.instance_row(event), "id": new_id("evt"), "payload": {"a": [1, "\u00e9"]}, "body": b"\x00\xff"}
    )
    sql, params = sqlrows.insert_sql(type(event), [sqlrows.instance_row(copy)], now=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    stored = type(event).objects.get(pk=copy.pk)
    assert stored.payload == {"a": [1, "\u00e9"]} and bytes(stored.body) == b"\x00\xff"
    assert stored.headers == event.headers and stored.received_at == event.received_at
