"""Beat: the periodic sweep that makes the database, not the broker, the truth.

Every ``HOOKSTREAM_BEAT_INTERVAL_SECONDS`` (``CELERY_BEAT_SCHEDULE``), :func:`beat_run`:

1. reclaims deliveries whose worker died (``in_flight`` with an expired lease) → pending;
2. wakes the destinations of due deliveries (pending/scheduled, ``next_attempt_at <= now``)
   that have no recent wake-up: parked long waits, and those whose broker message was lost
   (Redis flushed) — one wake-up per destination, read in batches with ``SELECT … FOR UPDATE
   SKIP LOCKED`` on PostgreSQL so two beats share work;
3. moves circuits open → half_open after ``circuit_breaker_reset_ms`` and picks the probe;
4. releases deliveries held by a circuit that is closed again (a hold that raced the close);
5. moves held deliveries older than the destination's whole retry window to the dead letter
   queue with reason ``circuit_open``.

Every step is idempotent: running beat twice at once, or a tick late, does no harm.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from deliveries import circuit
from deliveries.dispatch import destinations_wake_on_commit
from deliveries.models import UNFINISHED_STATUSES, DeadLetterReason, Delivery, DeliveryAttempt, DeliveryStatus
from deliveries.retry import retry_window_seconds
from deliveries.services import dead_letter_put
from destinations.models import CircuitState, CircuitStateValue, Destination, DestinationStatus

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_BATCHES = 20


def _locked(queryset):
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def leases_reclaim(now=None) -> int:
    """Expired leases (a worker died mid-attempt) → pending and woken again."""
    now = now or timezone.now()
    total = 0
    for _ in range(MAX_BATCHES):
        with transaction.atomic():
            rows = list(
                _locked(
                    Delivery.objects.filter(status=DeliveryStatus.IN_FLIGHT, lease_expires_at__lt=now).order_by(
                        "lease_expires_at"
                    )
                ).values_list("id", "destination_id")[:BATCH_SIZE]
            )
            if not rows:
                break
            ids = [row[0] for row in rows]
            moved = Delivery.objects.filter(
                id__in=ids, status=DeliveryStatus.IN_FLIGHT, lease_expires_at__lt=now
            ).update(status=DeliveryStatus.PENDING, next_attempt_at=now, lease_expires_at=None, woken_at=now)
            total += moved
            destinations_wake_on_commit((row[1] for row in rows), force=True)
        if len(ids) < BATCH_SIZE:
            break
    if total:
        logger.warning("reclaimed %d deliveries from expired leases", total)
    return total


def due_wake(now=None) -> int:
    """Wake each destination that has due deliveries without a recent wake-up, once (its
    task claims all of them); returns how many deliveries that covers."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.HOOKSTREAM_WAKE_GRACE_SECONDS)
    total = 0
    for _ in range(MAX_BATCHES):
        with transaction.atomic():
            rows = list(
                _locked(
                    Delivery.objects.filter(
                        # Never woken: a parked wait (woken when due), or a new delivery
                        # whose creator enqueued it on commit (given the grace period first).
                        Q(woken_at__isnull=True, created_at__lt=stale)
                        | Q(woken_at__isnull=True, status=DeliveryStatus.SCHEDULED)
                        | Q(woken_at__lt=stale),
                        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED],
                        next_attempt_at__lte=now,
                    ).order_by("next_attempt_at", "created_at")
                ).values_list("id", "destination_id")[:BATCH_SIZE]
            )
            if not rows:
                break
            ids = [row[0] for row in rows]
            Delivery.objects.filter(id__in=ids).update(woken_at=now)
            total += len(ids)
            # Sent even when a wake-up seems to be waiting: that one may be the lost message.
            destinations_wake_on_commit((row[1] for row in rows), force=True)
        if len(ids) < BATCH_SIZE:
            break
    return total


def circuits_advance(now=None) -> None:
    """open → half_open when the cooldown is over (and pick the probe); a half_open circuit
    whose probe vanished (finished elsewhere, deleted) gets a new one."""
    now = now or timezone.now()
    circuits = CircuitState.objects.select_related("destination").filter(
        state__in=[CircuitStateValue.OPEN, CircuitStateValue.HALF_OPEN],
        destination__deleted_at__isnull=True,
        destination__circuit_breaker_enabled=True,
        # A paused destination holds everything anyway; its circuit waits for the resume.
        destination__status=DestinationStatus.ACTIVE,
    )
    for state in circuits:
        destination = state.destination
        if not circuit.circuit_half_open_if_due(destination=destination, circuit=state, now=now):
            continue
        if state.probe_delivery_id:
            alive = Delivery.objects.filter(
                pk=state.probe_delivery_id,
                status__in=UNFINISHED_STATUSES,
            ).first()
            if alive is not None and alive.status == DeliveryStatus.HELD:
                # The probe was held again (e.g. it raced a pause): make it due.
                Delivery.objects.filter(pk=alive.pk, status=DeliveryStatus.HELD).update(
                    status=DeliveryStatus.PENDING, next_attempt_at=now, woken_at=now
                )
                destinations_wake_on_commit([destination.pk])
            if alive is not None:
                continue
            CircuitState.objects.filter(
                destination_id=destination.pk,
                state=CircuitStateValue.HALF_OPEN,
                probe_delivery_id=state.probe_delivery_id,
            ).update(probe_delivery_id=None, updated_at=now)
        with transaction.atomic():
            circuit.circuit_probe_pick(destination_id=destination.pk, now=now)


def held_sweep(now=None) -> None:
    """Release holds that no longer apply; dead-letter holds older than the retry window."""
    now = now or timezone.now()
    destination_ids = set(
        Delivery.objects.filter(status=DeliveryStatus.HELD).values_list("destination_id", flat=True).distinct()
    )
    for destination in Destination.all_objects.filter(pk__in=destination_ids).select_related("circuit"):
        if destination.deleted_at is not None or destination.status != DestinationStatus.ACTIVE:
            continue  # paused: held until resumed (deleted ones are cancelled on delete)
        state = getattr(destination, "circuit", None)
        if not destination.circuit_breaker_enabled or state is None or state.state == CircuitStateValue.CLOSED:
            circuit.held_deliveries_release(destination=destination)
            continue
        cutoff = now - timedelta(seconds=retry_window_seconds(destination))
        for delivery in Delivery.objects.filter(
            destination=destination, status=DeliveryStatus.HELD, created_at__lt=cutoff
        ).exclude(pk=state.probe_delivery_id or ""):
            with transaction.atomic():
                if Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.HELD).update(
                    status=DeliveryStatus.DEAD, completed_at=now, updated_at=now
                ):
                    dead_letter_put(
                        delivery=delivery,
                        reason=DeadLetterReason.CIRCUIT_OPEN,
                        error=f"held by an open circuit longer than the retry window; last error: "
                        f"{delivery.last_error or 'none'}",
                        now=now,
                    )
                    # Its last attempt (if it ever had one) is the one that joined the queue.
                    last = delivery.attempts.order_by("-attempt_number").values_list("pk", flat=True).first()
                    if last:
                        DeliveryAttempt.objects.filter(pk=last).update(is_dlq=True, dlq_at=now)


def beat_run() -> None:
    """One beat tick (see the module docstring)."""
    now = timezone.now()
    leases_reclaim(now)
    circuits_advance(now)
    held_sweep(now)
    due_wake(timezone.now())
