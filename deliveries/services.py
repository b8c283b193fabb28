"""Writes for deliveries: creating them, retries, cancelling, dead letters, replay jobs, the
test send, and what deleting, pausing or resuming a destination does to its deliveries.

``deliveries_create`` is the only place a Delivery row is born (fan-out, replay, test send,
admin replay). One attempt is ``deliveries.engine``; beat is ``deliveries.beat``; wake-ups
go through ``deliveries.dispatch``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from deliveries import signals
from deliveries.circuit import held_deliveries_release
from deliveries.dispatch import destinations_wake_on_commit, replay_job_start_on_commit
from deliveries.models import (
    DeadLetter,
    Delivery,
    DeliveryStatus,
    JobStatus,
    ReplayJob,
    TriggerType,
)
from destinations import services as destination_services
from destinations.models import Destination, DestinationStatus
from hookstream.errors import Conflict, ValidationError
from hookstream.models import Organization
from intake import services as intake_services
from intake.models import Event, Source

# --- creating deliveries -------------------------------------------------------------------


@dataclass(frozen=True)
class NewDelivery:
    """One delivery for ``deliveries_create`` to make."""

    event_id: str
    destination_id: str
    connection_id: str | None = None
    subscription_id: str | None = None
    # The body after the route's transform; None sends the event body.
    transformed_payload: Any = None
    # The route's transform is still to apply (by the worker, in the sandbox).
    transform_pending: bool = False


def deliveries_create(
    *,
    organization_id: str,
    new: Sequence[NewDelivery],
    trigger_type: str = TriggerType.INITIAL,
    replay_job: ReplayJob | None = None,
    now: datetime | None = None,
) -> list[Delivery]:
    """Create deliveries (one INSERT) and wake their destinations once the transaction commits.

    Every delivery starts due now and counted as woken (its wake-up is sent on commit; beat
    steps in after the grace period if that message is lost). Runs in the caller's
    transaction when there is one, without a savepoint: ingest pays no extra statement.
    """
    if not new:
        return []
    now = now or timezone.now()
    rows = []
    for item in new:
        delivery = Delivery(
            organization_id=organization_id,
            event_id=item.event_id,
            destination_id=item.destination_id,
            connection_id=item.connection_id,
            subscription_id=item.subscription_id,
            transformed_payload=item.transformed_payload,
            transform_pending=item.transform_pending,
            trigger_type=trigger_type,
            replay_job=replay_job,
            next_attempt_at=now,
            woken_at=now,
            created_at=now,
        )
        rows.append(delivery)
    with transaction.atomic(savepoint=False):
        Delivery.objects.bulk_create(rows)
        destinations_wake_on_commit(d.destination_id for d in rows)
    return rows


def dead_letter_put(*, delivery: Delivery, reason: str, error: str, now: datetime) -> None:
    """Create (or replace, for a delivery that died before) the delivery's DeadLetter row."""
    dead_letters_put(items=[(delivery, reason, error)], now=now)


def dead_letters_put(*, items: Sequence[tuple[Delivery, str, str]], now: datetime) -> None:
    """Dead-letter many deliveries at once, ``(delivery, reason, error)``: one DELETE of their
    earlier rows and one multi-row INSERT (the engine's batches); each announced on commit."""
    if not items:
        return
    for delivery, reason, error in items:
        signals.send_on_commit(signals.delivery_dead_lettered, delivery=delivery, reason=reason, error=error)
    DeadLetter.objects.filter(delivery_id__in=[delivery.pk for delivery, _, _ in items]).delete()
    DeadLetter.objects.bulk_create(
        [
            DeadLetter(
                delivery_id=delivery.pk,
                organization_id=delivery.organization_id,
                destination_id=delivery.destination_id,
                event_id=delivery.event_id,
                reason=reason,
                last_error=error,
                created_at=now,
            )
            for delivery, reason, error in items
        ]
    )


# --- what a destination's changes do to its deliveries -------------------------------------


def deliveries_cancel_for_destination(*, destination: Destination) -> int:
    """Cancel every delivery of a deleted destination that has not finished."""
    return Delivery.objects.filter(
        destination=destination,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD],
    ).update(status=DeliveryStatus.CANCELLED, completed_at=timezone.now(), lease_expires_at=None)


def destination_update(*, destination: Destination, data: dict) -> Destination:
    """``destinations.services.destination_update``, and a resume (paused or disabled →
    active) releases the deliveries held meanwhile, in the same transaction.

    The row is locked before its old status is read, so two concurrent PATCHes agree on
    which one resumed it.
    """
    with transaction.atomic():
        old_status = (
            Destination.objects.select_for_update().filter(pk=destination.pk).values_list("status", flat=True).first()
        )
        row = destination_services.destination_update(destination=destination, data=data)
        if row.status == DestinationStatus.ACTIVE and old_status != DestinationStatus.ACTIVE:
            held_deliveries_release(destination=row)
    return row


def destination_delete(*, destination: Destination) -> None:
    """Soft-delete the destination (``destinations.services.destination_delete``) and cancel
    what it still owed, in one transaction."""
    with transaction.atomic():
        destination_services.destination_delete(destination=destination)
        deliveries_cancel_for_destination(destination=destination)


# --- retries -------------------------------------------------------------------------------

RETRYABLE_STATUSES = (DeliveryStatus.DEAD, DeliveryStatus.SCHEDULED, DeliveryStatus.SUCCEEDED)


class RetryRefused(Exception):
    """The delivery cannot be retried now (the message says why)."""


def delivery_retry(*, delivery: Delivery, trigger_type: str = TriggerType.MANUAL, job: ReplayJob | None = None) -> None:
    """Send a delivery again now, with a fresh retry cycle; its old attempts are kept.

    Dead, scheduled (waiting for a retry) and succeeded deliveries can be retried. One in
    flight, pending or held is already on its way; one of a deleted destination is not.
    """
    now = timezone.now()
    destination = delivery.destination
    if destination.deleted_at is not None:
        raise RetryRefused("its destination was deleted")
    with transaction.atomic():
        moved = Delivery.objects.filter(pk=delivery.pk, status__in=RETRYABLE_STATUSES).update(
            status=DeliveryStatus.PENDING,
            trigger_type=trigger_type,
            cycle_start_attempt=delivery_attempt_count(delivery.pk),
            next_attempt_at=now,
            woken_at=now,
            lease_expires_at=None,
            completed_at=None,
            replay_job=job,
            updated_at=now,
        )
        if not moved:
            current = Delivery.objects.filter(pk=delivery.pk).values_list("status", flat=True).first()
            raise RetryRefused(f"it is {current} and cannot be retried now")
        DeadLetter.objects.filter(delivery_id=delivery.pk).delete()
        signals.send_on_commit(signals.delivery_requeued, delivery=delivery, trigger_type=trigger_type)
        destinations_wake_on_commit([delivery.destination_id])


def delivery_attempt_count(delivery_id: str) -> int:
    return Delivery.objects.filter(pk=delivery_id).values_list("attempt_count", flat=True).first() or 0


def delivery_retry_or_409(*, delivery: Delivery) -> None:
    """``delivery_retry``, refusing with ``Conflict`` (409) instead of ``RetryRefused``."""
    try:
        delivery_retry(delivery=delivery)
    except RetryRefused as exc:
        raise Conflict(f"Delivery {delivery.pk} cannot be retried: {exc}.") from None


def event_retry(*, event: Event) -> dict:
    """Retry every failed (scheduled for retry) or dead delivery of an event."""
    retried, errors = [], []
    deliveries = (
        Delivery.objects.select_related("destination")
        .filter(event=event, status__in=[DeliveryStatus.DEAD, DeliveryStatus.SCHEDULED])
        .order_by("created_at", "id")
    )
    for delivery in deliveries:
        try:
            delivery_retry(delivery=delivery)
        except RetryRefused as exc:
            errors.append({"delivery_id": delivery.pk, "destination_id": delivery.destination_id, "error": str(exc)})
        else:
            retried.append({"delivery_id": delivery.pk, "destination_id": delivery.destination_id})
    return {"retried": retried, "errors": errors}


# --- jobs: replay and dead letter retry ----------------------------------------------------


def replay_job_create(
    *,
    organization: Organization,
    destination: Destination,
    source: Source | None = None,
    range_from: datetime,
    range_to: datetime,
    rate_limit: int,
    max_events: int,
) -> ReplayJob:
    """Create a replay job for a time range of events and start it on a worker."""
    if rate_limit < 1 or rate_limit > 100:
        raise ValidationError({"rate_limit": ["Must be between 1 and 100 events per second."]})
    if max_events < 1 or max_events > 10000:
        raise ValidationError({"max_events": ["Must be between 1 and 10000."]})
    events = Event.objects.filter(organization=organization, received_at__gte=range_from, received_at__lte=range_to)
    if source is not None:
        events = events.filter(source=source)
    total = min(events.count(), max_events)
    with transaction.atomic():
        job = ReplayJob.objects.create(
            organization=organization,
            kind=ReplayJob.Kind.REPLAY,
            destination=destination,
            source=source,
            range_from=range_from,
            range_to=range_to,
            rate_limit=rate_limit,
            max_events=max_events,
            total=total,
        )
        signals.send_on_commit(signals.replay_started, job=job)
        replay_job_start_on_commit(job.pk)
    return job


def dead_letter_retry_job_create(
    *,
    organization: Organization,
    destination: Destination,
    range_from: datetime | None = None,
    range_to: datetime | None = None,
) -> ReplayJob:
    """Create a job that retries a destination's dead letters (optionally by time range)."""
    with transaction.atomic():
        job = ReplayJob.objects.create(
            organization=organization,
            kind=ReplayJob.Kind.DEAD_LETTER_RETRY,
            destination=destination,
            range_from=range_from,
            range_to=range_to,
            rate_limit=100,
            max_events=10000,
            total=_dead_letters_in_range(destination, range_from, range_to).count(),
        )
        replay_job_start_on_commit(job.pk)
    return job


def _dead_letters_in_range(
    destination: Destination, range_from: datetime | None, range_to: datetime | None
) -> QuerySet[DeadLetter]:
    rows = DeadLetter.objects.filter(destination=destination)
    if range_from:
        rows = rows.filter(created_at__gte=range_from)
    if range_to:
        rows = rows.filter(created_at__lte=range_to)
    return rows


def replay_job_run(*, job_id: str) -> None:
    """Run a job to the end, pacing itself at ``rate_limit`` per second.

    Resumable: a redelivered task skips the events (or dead letters) it already handled, as
    the job's deliveries record them.
    """
    job = ReplayJob.objects.select_related("destination").filter(pk=job_id).first()
    if job is None or job.status != JobStatus.RUNNING:
        return
    try:
        if job.kind == ReplayJob.Kind.REPLAY:
            _run_replay(job)
        else:
            _run_dead_letter_retry(job)
    except Exception as exc:
        ReplayJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=str(exc)[:2000])
        raise
    ReplayJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.COMPLETED, completed_at=timezone.now()
    )


def _pace(started: float, index: int, rate: int) -> None:
    target = started + index / rate
    delay = target - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _run_replay(job: ReplayJob) -> None:
    events = Event.objects.filter(
        organization_id=job.organization_id, received_at__gte=job.range_from, received_at__lte=job.range_to
    )
    if job.source_id:
        events = events.filter(source_id=job.source_id)
    done = set(Delivery.objects.filter(replay_job=job).values_list("event_id", flat=True))
    started = time.monotonic()
    sent = 0
    for event_id in events.order_by("received_at", "id").values_list("id", flat=True)[: job.max_events]:
        if event_id in done:
            continue
        _pace(started, sent, job.rate_limit)
        # The route's transform is kept: reuse the payload a previous delivery sent.
        previous: dict[str, Any] = dict(
            Delivery.objects.filter(event_id=event_id, destination_id=job.destination_id)
            .order_by("-created_at")
            .values("transformed_payload", "transform_pending", "connection_id", "subscription_id")
            .first()
            or {}
        )
        with transaction.atomic():
            deliveries_create(
                organization_id=job.organization_id,
                new=[
                    NewDelivery(
                        event_id=event_id,
                        destination_id=job.destination_id,
                        connection_id=previous.get("connection_id"),
                        subscription_id=previous.get("subscription_id"),
                        transformed_payload=previous.get("transformed_payload"),
                        # A transform the earlier delivery never got to apply is still owed.
                        transform_pending=bool(previous.get("transform_pending")),
                    )
                ],
                trigger_type=TriggerType.REPLAY,
                replay_job=job,
            )
            ReplayJob.objects.filter(pk=job.pk).update(processed=F("processed") + 1)
        sent += 1


def _run_dead_letter_retry(job: ReplayJob) -> None:
    rows = _dead_letters_in_range(job.destination, job.range_from, job.range_to).select_related(
        "delivery", "delivery__destination"
    )
    started = time.monotonic()
    for index, dead_letter in enumerate(rows.order_by("created_at", "id")[: job.max_events]):
        _pace(started, index, job.rate_limit)
        try:
            delivery_retry(delivery=dead_letter.delivery, trigger_type=TriggerType.MANUAL, job=job)
        except RetryRefused:
            ReplayJob.objects.filter(pk=job.pk).update(processed=F("processed") + 1)
            continue
        ReplayJob.objects.filter(pk=job.pk).update(processed=F("processed") + 1)


def replay_job_progress(*, job: ReplayJob) -> ReplayJob:
    """Fill ``succeeded`` / ``failed`` from the job's deliveries (live counts)."""
    counts = Delivery.objects.filter(replay_job=job).aggregate(
        succeeded=_count(Q(status=DeliveryStatus.SUCCEEDED)),
        failed=_count(Q(status=DeliveryStatus.DEAD)),
    )
    job.succeeded = counts["succeeded"] or 0
    job.failed = counts["failed"] or 0
    return job


def _count(condition: Q) -> Count:
    return Count("pk", filter=condition)


def destination_test_send(*, destination: Destination) -> Delivery:
    """Send a sample event to ``destination`` through the real pipeline (queue, worker,
    provider, retries); returns the delivery to follow."""
    now = timezone.now()
    payload = {
        "type": "hookstream.test",
        "message": "A test event sent from hookstream.",
        "destination_id": destination.pk,
        "sent_at": now.isoformat().replace("+00:00", "Z"),
    }
    incoming = intake_services.Incoming(
        method="POST",
        body=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        content_type="application/json",
    )
    with transaction.atomic():
        event = intake_services.event_store(organization_id=destination.organization_id, incoming=incoming, now=now)
        (delivery,) = deliveries_create(
            organization_id=destination.organization_id,
            new=[NewDelivery(event_id=event.pk, destination_id=destination.pk)],
            trigger_type=TriggerType.MANUAL,
            now=now,
        )
    return delivery


def events_replay(*, events: Iterable[Event]) -> list[Delivery]:
    """Deliver ``events`` again to the live destinations they were delivered to (the admin's
    replay action): one delivery per event and destination, with the route and transformed
    payload of the latest delivery there."""
    created: list[Delivery] = []
    with transaction.atomic():
        for event in events:
            previous: dict[str, Any] = {}
            for row in (
                Delivery.objects.filter(event=event, destination__deleted_at__isnull=True)
                .order_by("created_at")
                .values("destination_id", "connection_id", "subscription_id", "transformed_payload")
            ):
                previous[row["destination_id"]] = row  # the latest one per destination wins
            created += deliveries_create(
                organization_id=event.organization_id,
                new=[NewDelivery(event_id=event.pk, **row) for row in previous.values()],
                trigger_type=TriggerType.REPLAY,
            )
    return created
