"""Writes for deliveries: enqueueing, releasing held deliveries, retries, replay jobs.

The engine itself (one attempt) is ``deliveries.engine``; beat is ``deliveries.beat``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from deliveries import signals
from deliveries.models import (
    DeadLetter,
    Delivery,
    DeliveryStatus,
    JobStatus,
    ReplayJob,
    TriggerType,
)
from hookstream.api.exceptions import Conflict


def deliveries_enqueue_on_commit(delivery_ids: list[str]) -> None:
    """Wake a worker for each delivery once the surrounding transaction commits.

    Outside a transaction ``on_commit`` runs at once. If the broker is unreachable the
    wake-up is lost, not the delivery: beat wakes every due delivery from the database.
    """
    if not delivery_ids:
        return
    ids = list(delivery_ids)

    def _send():
        import logging

        from deliveries.tasks import deliver

        for delivery_id in ids:
            try:
                deliver.delay(delivery_id)
            except Exception:  # broker down: beat will wake it
                logging.getLogger(__name__).warning("could not enqueue %s; beat will wake it", delivery_id)
                return

    transaction.on_commit(_send)


def held_deliveries_release(*, destination) -> int:
    """Make a destination's held deliveries due again (circuit closed, reset or resumed).

    They are woken oldest first and given ``next_attempt_at`` one microsecond apart in
    creation order, so beat (which wakes by ``next_attempt_at``) keeps the same order.
    Returns how many were released.
    """
    now = timezone.now()
    released = 0
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(destination_id=destination.pk, status=DeliveryStatus.HELD)
            .order_by("created_at", "id")
            .values_list("id", flat=True)
        )
        woken = []
        for offset, delivery_id in enumerate(ids):
            due = now + timedelta(microseconds=offset)
            if Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.HELD).update(
                status=DeliveryStatus.PENDING, next_attempt_at=due, woken_at=now, lease_expires_at=None
            ):
                woken.append(delivery_id)
        released = len(woken)
        deliveries_enqueue_on_commit(woken)
    return released


def deliveries_cancel_for_destination(*, destination) -> int:
    """Cancel every delivery of a deleted destination that has not finished."""
    return Delivery.objects.filter(
        destination=destination,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD],
    ).update(status=DeliveryStatus.CANCELLED, completed_at=timezone.now(), lease_expires_at=None)


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
        deliveries_enqueue_on_commit([delivery.pk])


def delivery_attempt_count(delivery_id: str) -> int:
    return Delivery.objects.filter(pk=delivery_id).values_list("attempt_count", flat=True).first() or 0


def delivery_retry_or_409(*, delivery: Delivery) -> None:
    try:
        delivery_retry(delivery=delivery)
    except RetryRefused as exc:
        raise Conflict(f"Delivery {delivery.pk} cannot be retried: {exc}.") from None


def event_retry(*, event) -> dict:
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
    *, organization, destination, source=None, range_from, range_to, rate_limit: int, max_events: int
) -> ReplayJob:
    """Create a replay job for a time range of events and start it on a worker."""
    from intake.models import Event

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
        _job_start_on_commit(job.pk)
    return job


def dead_letter_retry_job_create(*, organization, destination, range_from=None, range_to=None) -> ReplayJob:
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
        _job_start_on_commit(job.pk)
    return job


def _job_start_on_commit(job_id: str) -> None:
    def _start():
        from deliveries.tasks import replay_run

        replay_run.delay(job_id)

    transaction.on_commit(_start)


def _dead_letters_in_range(destination, range_from, range_to):
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
    from intake.models import Event

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
        previous = (
            Delivery.objects.filter(event_id=event_id, destination_id=job.destination_id)
            .order_by("-created_at")
            .values("transformed_payload", "connection_id", "subscription_id")
            .first()
            or {}
        )
        with transaction.atomic():
            delivery = Delivery.objects.create(
                organization_id=job.organization_id,
                event_id=event_id,
                destination_id=job.destination_id,
                connection_id=previous.get("connection_id"),
                subscription_id=previous.get("subscription_id"),
                transformed_payload=previous.get("transformed_payload"),
                trigger_type=TriggerType.REPLAY,
                replay_job=job,
            )
            ReplayJob.objects.filter(pk=job.pk).update(processed=F("processed") + 1)
            deliveries_enqueue_on_commit([delivery.pk])
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


def _count(condition: Q):
    from django.db.models import Count

    return Count("pk", filter=condition)


def destination_test_send(*, destination) -> Delivery:
    """Send a sample event to ``destination`` through the real pipeline (queue, worker,
    provider, retries); returns the delivery to follow."""
    import json as _json

    from intake.models import Event

    now = timezone.now()
    payload = {
        "type": "hookstream.test",
        "message": "A test event sent from hookstream.",
        "destination_id": destination.pk,
        "sent_at": now.isoformat().replace("+00:00", "Z"),
    }
    body = _json.dumps(payload).encode()
    with transaction.atomic():
        event = Event.objects.create(
            organization_id=destination.organization_id,
            method="POST",
            headers={"content-type": "application/json"},
            content_type="application/json",
            body=body,
            payload=payload,
            body_size=len(body),
            received_at=now,
            created_at=now,
        )
        delivery = Delivery.objects.create(
            organization_id=destination.organization_id,
            event=event,
            destination=destination,
            trigger_type=TriggerType.MANUAL,
        )
        deliveries_enqueue_on_commit([delivery.pk])
    return delivery
