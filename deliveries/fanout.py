"""Fan-out: an event arrives (at a source's ingest URL, or published to a topic) and leaves
as deliveries.

1. Store the event (``intake.services``: dedup, idempotency keys).
2. Match its routes (``intake.routing``: filters decide; transforms are owed to the worker).
3. Create one delivery per match (``deliveries.services.deliveries_create``), in the
   event's transaction, so an event is never stored without its deliveries.
4. Wake them when that transaction commits (``deliveries.dispatch``); announce the event
   (``intake.signals``) and show it on the live stream (``hookstream.stream_bus``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from deliveries.services import NewDelivery, deliveries_create
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


def event_ingest(
    *, source: Source, routes: list[Connection], incoming: Incoming, schema_errors: list[str] | None = None
) -> Stored:
    """Store a request received at a source's ingest URL and fan it out.

    1. Dedup (when enabled): claim the key or answer with the original event.
    2. Insert the event and its deliveries (transforms still to apply) in one transaction;
       the deliveries are enqueued when it commits.
    3. Count the event on the source (``source_count_event``), once it is committed.
    """
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
