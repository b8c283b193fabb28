"""Fan-out: an event arrives (at a source's ingest URL, or published to a topic) and leaves
as deliveries.

1. Store the event (``intake.services``: dedup, idempotency keys).
2. Match its routes (``intake.routing``: filters decide; transforms are owed to the worker).
3. Create one delivery per match, in the event's transaction, so an event is never stored
   without its deliveries: at a source's ingest URL, in the same statement as the event
   (``event_ingest``, the hottest path: no model object per row, and the event's commit
   and the source's counters in one round trip); for a topic, with
   ``deliveries.services.deliveries_create``.
4. Wake their destinations when that transaction commits (``deliveries.dispatch``); announce the event
   (``intake.signals``) and show it on the live stream (``hookstream.stream_bus``).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg.pq import TransactionStatus

from deliveries.dispatch import destinations_wake_on_commit
from deliveries.models import Delivery, TriggerType
from deliveries.services import NewDelivery, deliveries_create
from hookstream import sqlrows
from hookstream.ids import new_id
from intake import routing, selectors
from intake import services as intake_services
from intake.models import Connection, Event, Source, Subscription, Topic
from intake.services import Incoming, Stored


def _fan_out(*, event: Event, routes: Iterable[Connection | Subscription], now: datetime) -> None:
    """Create one delivery per matching route, in the caller's transaction.

    A route's transform is not applied here: the delivery is created with
    ``transform_pending`` and the worker applies it in the sandbox before the first attempt.
    """
    matches = routing.routes_match(event=event, routes=routes)
    if not matches:
        return
    deliveries_create(
        organization_id=event.organization_id,
        new=[
            NewDelivery(
                event_id=event.pk,
                destination_id=match.destination_id,
                connection_id=match.connection_id,
                subscription_id=match.subscription_id,
                transform_pending=match.transform_pending,
            )
            for match in matches
        ],
        now=now,
    )


def _delivery_rows(*, event: Event, routes: Iterable[Connection], now: datetime) -> list[dict[str, Any]]:
    """One delivery row (by attribute name) per route the event takes, due now and counted as
    woken, as ``deliveries.services.deliveries_create`` makes them."""
    return [
        {
            "id": new_id("dlv"),
            "organization_id": event.organization_id,
            "event_id": event.pk,
            "destination_id": match.destination_id,
            "connection_id": match.connection_id,
            "subscription_id": match.subscription_id,
            "transform_pending": match.transform_pending,
            "trigger_type": TriggerType.INITIAL,
            "next_attempt_at": now,
            "woken_at": now,
            "created_at": now,
        }
        for match in routing.routes_match(event=event, routes=routes)
    ]


def _event_with_deliveries_sql(*, event: Event, deliveries: list[dict[str, Any]], now: datetime) -> tuple[str, list]:
    """One statement: the event, and its deliveries in a data-modifying CTE's company
    (``WITH new_event AS (INSERT …) INSERT …``)."""
    sql, params = sqlrows.insert_sql(Event, [sqlrows.instance_row(event)], now=now)
    if deliveries:
        deliveries_sql, deliveries_params = sqlrows.insert_sql(Delivery, deliveries, now=now)
        sql = f"WITH new_event AS ({sql}) {deliveries_sql}"
        params += deliveries_params
    return sql, params


def _event_stored(event_id: str) -> bool:
    """After a failed round trip: whether the event was committed all the same, the
    transaction that held it first closed if the failure left it open."""
    try:
        raw = connection.connection
        if raw is not None and raw.info.transaction_status == TransactionStatus.INERROR:
            raw.rollback()
        return Event.objects.filter(pk=event_id).exists()
    except DatabaseError:
        return False


def _event_store_and_count(*, source: Source, event: Event, deliveries: list[dict[str, Any]], now: datetime) -> None:
    """Outside any transaction: one round trip carrying two transactions.

    ``BEGIN; <the event and its deliveries>; COMMIT`` — committed durably, before anything
    after it runs — then the source's counters, committed without waiting for the flush
    (``intake.services.source_count_event``). PostgreSQL runs the statements of one query
    string in order and stops at the first error. When the round trip fails the event may
    still be stored (the counters failed after the COMMIT): then the failure is only logged,
    as ``source_count_event`` does; otherwise it is raised (nothing was stored).
    """
    sql, params = _event_with_deliveries_sql(event=event, deliveries=deliveries, now=now)
    count_sql, count_params = intake_services.source_count_event_sql(source=source, now=now)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"BEGIN; {sql}; COMMIT; {count_sql}", [*params, *count_params])
    except DatabaseError:
        if not _event_stored(event.pk):
            raise
        intake_services.source_count_event_failed(source=source)


def event_ingest(
    *, source: Source, routes: list[Connection], incoming: Incoming, schema_errors: list[str] | None = None
) -> Stored:
    """Store a request received at a source's ingest URL and fan it out.

    1. Build the event and match its routes (filters decide; transforms are owed to the
       worker).
    2. Write the event and its deliveries in one statement, in one transaction committed
       durably before the answer (PostgreSQL; elsewhere with the ORM, ``_event_ingest_orm``).
       With a dedup key, the key is claimed first in that transaction, or the original event
       is answered and nothing is stored.
    3. Count the event on the source once it has committed (``source_count_event``). With
       no dedup claim and no surrounding transaction, steps 2 and 3 share one round trip
       (``_event_store_and_count``).
    4. Once the event has committed: wake their destinations (``deliveries.dispatch``), announce
       the event and show it on the live stream.
    """
    if connection.vendor != "postgresql":
        return _event_ingest_orm(source=source, routes=routes, incoming=incoming, schema_errors=schema_errors)
    now = timezone.now()
    event, key = intake_services.source_event_new(
        source=source, incoming=incoming, now=now, schema_errors=schema_errors
    )
    deliveries = _delivery_rows(event=event, routes=routes, now=now)
    if key is None and not connection.in_atomic_block:
        _event_store_and_count(source=source, event=event, deliveries=deliveries, now=now)
        destinations_wake_on_commit(row["destination_id"] for row in deliveries)  # committed: sent at once
        intake_services.event_received_on_commit(event=event)
        return Stored(event=event)
    with transaction.atomic() if key is not None else nullcontext():
        if key is not None and (
            duplicate := intake_services.source_event_claim(source=source, event=event, key=key, now=now)
        ):
            return duplicate
        with connection.cursor() as cursor:
            cursor.execute(*_event_with_deliveries_sql(event=event, deliveries=deliveries, now=now))
        destinations_wake_on_commit(row["destination_id"] for row in deliveries)
        intake_services.event_received_on_commit(event=event)
    intake_services.source_count_event(source=source, now=now)
    return Stored(event=event)


def _event_ingest_orm(
    *, source: Source, routes: list[Connection], incoming: Incoming, schema_errors: list[str] | None = None
) -> Stored:
    """``event_ingest`` with the ORM (SQLite): the same steps, in a transaction."""
    now = timezone.now()
    with transaction.atomic():
        stored = intake_services.source_event_store(
            source=source, incoming=incoming, now=now, schema_errors=schema_errors
        )
        if stored.deduplicated:
            return stored
        _fan_out(event=stored.event, routes=routes, now=now)
        intake_services.event_received_on_commit(event=stored.event)
    intake_services.source_count_event(source=source, now=now)
    return stored


def topic_publish(*, topic: Topic, incoming: Incoming, idempotency_key: str | None = None) -> Stored:
    """Store an event published to a topic and fan it out to its subscriptions.

    A repeat of an idempotency key within 24 hours answers with the first event
    (``replayed``) and stores nothing (``intake.services.topic_event_store``).
    """
    now = timezone.now()
    event = intake_services.topic_event_new(topic=topic, incoming=incoming, idempotency_key=idempotency_key, now=now)
    routes = selectors.topic_routes(topic=topic)
    with transaction.atomic():
        stored = intake_services.topic_event_store(event=event, now=now)
        if stored.replayed:
            return stored
        _fan_out(event=stored.event, routes=routes, now=now)
        intake_services.event_received_on_commit(event=stored.event)
    return stored
