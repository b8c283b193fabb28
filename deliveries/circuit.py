"""The circuit breaker of a destination (spec §3), driven by the delivery engine and beat.

States live in ``destinations.models.CircuitState``; every transition is one conditional
UPDATE (``filter(state=<expected>, …).update(…)``) so that many workers racing on the same
destination agree on one outcome without locks:

* closed → open: when ``failure_count`` reaches ``circuit_breaker_threshold``.
* open → half_open: once ``circuit_breaker_reset_ms`` have passed since ``opened_at``.
* half_open: exactly one probe, the oldest held delivery (``probe_delivery_id`` is set with
  ``probe_delivery_id IS NULL`` in the WHERE clause, so only one writer wins).
* probe success → closed (held deliveries drain oldest first); probe failure → open again
  with a fresh ``opened_at`` (the cooldown restarts).

Every write of a ``CircuitState`` row is here (the manual reset included), and so is the
release of held deliveries, which follows a close, a reset or a resume.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deliveries import signals
from deliveries.dispatch import destinations_wake_on_commit
from deliveries.models import Delivery, DeliveryStatus
from destinations.models import CircuitState, CircuitStateValue, Destination


def _circuit(destination_id: str) -> CircuitState:
    circuit = CircuitState.objects.filter(destination_id=destination_id).first()
    if circuit is None:
        circuit, _ = CircuitState.objects.get_or_create(destination_id=destination_id)
    return circuit


def circuit_half_open_if_due(*, destination: Destination, circuit: CircuitState, now: datetime) -> bool:
    """open → half_open once the cooldown is over. True when the circuit is half_open now."""
    if circuit.state == CircuitStateValue.HALF_OPEN:
        return True
    if circuit.state != CircuitStateValue.OPEN:
        return False
    opened_at = circuit.opened_at or now
    if now < opened_at + timedelta(milliseconds=destination.circuit_breaker_reset_ms):
        return False
    if CircuitState.objects.filter(
        destination_id=destination.pk, state=CircuitStateValue.OPEN, opened_at=circuit.opened_at
    ).update(state=CircuitStateValue.HALF_OPEN, half_opened_at=now, probe_delivery_id=None, updated_at=now):
        signals.circuit_moved(destination.pk, "open", "half_open")
    # Whoever won the race, the circuit is half_open (or already moved on): re-read.
    circuit.refresh_from_db()
    return circuit.state == CircuitStateValue.HALF_OPEN


def circuit_probe_pick(*, destination_id: str, now: datetime, current: Delivery | None = None) -> str | None:
    """Choose the one probe of a half_open circuit; returns the probe's delivery id.

    The probe is the oldest held delivery, or ``current`` (a delivery a worker has just
    claimed) when it is older or nothing is held. When a held delivery wins it is made due
    and woken. A probe already chosen is kept.
    """
    oldest = (
        Delivery.objects.filter(destination_id=destination_id, status=DeliveryStatus.HELD)
        .order_by("created_at", "id")
        .values_list("id", "created_at")
        .first()
    )
    candidates = [c for c in (oldest, (current.id, current.created_at) if current else None) if c]
    if candidates:
        chosen = min(candidates, key=lambda c: (c[1], c[0]))[0]
        won = CircuitState.objects.filter(
            destination_id=destination_id, state=CircuitStateValue.HALF_OPEN, probe_delivery_id__isnull=True
        ).update(probe_delivery_id=chosen, updated_at=now)
        if won and (current is None or chosen != current.id):
            released = Delivery.objects.filter(id=chosen, status=DeliveryStatus.HELD).update(
                status=DeliveryStatus.PENDING, next_attempt_at=now, woken_at=now
            )
            if released:
                destinations_wake_on_commit([destination_id])
    return (
        CircuitState.objects.filter(destination_id=destination_id, state=CircuitStateValue.HALF_OPEN)
        .values_list("probe_delivery_id", flat=True)
        .first()
    )


def circuit_gate_batch(
    *, destination: Destination, deliveries: list[Delivery], now: datetime
) -> tuple[list[Delivery], tuple[str, int]]:
    """Which of ``deliveries`` (claimed by this worker, oldest first) may be attempted now;
    the others are to be held. Gated once for the batch:

    * closed, or the breaker off: all of them;
    * open, cooldown not over: none;
    * half_open: at most one, the probe — exactly one probe per half_open period, elected
      by the conditional UPDATE of :func:`circuit_probe_pick` (the oldest held delivery, or
      the oldest of this batch when it is older or nothing is held).

    Also returns the (state, failure_count) it read: the engine caps the concurrency of a
    failing destination with it, and skips a needless write after a success.
    """
    # The engine loads the circuit with the destination (select_related): no extra query.
    try:
        circuit = destination.circuit
    except CircuitState.DoesNotExist:
        circuit = _circuit(destination.pk)
    seen = (circuit.state, circuit.failure_count)
    if not destination.circuit_breaker_enabled or circuit.state == CircuitStateValue.CLOSED:
        return list(deliveries), seen
    if not deliveries or not circuit_half_open_if_due(destination=destination, circuit=circuit, now=now):
        return [], seen
    seen = (circuit.state, circuit.failure_count)
    by_id = {delivery.id: delivery for delivery in deliveries}
    probe = circuit.probe_delivery_id
    if not probe:
        oldest = min(deliveries, key=lambda d: (d.created_at, d.id))
        probe = circuit_probe_pick(destination_id=destination.pk, now=now, current=oldest)
    return ([by_id[probe]] if probe in by_id else []), seen


def circuit_record(
    *,
    destination: Destination,
    outcomes: list[tuple[str, bool]],
    now: datetime,
    seen: tuple[str, int] | None = None,
) -> bool:
    """Fold a batch's attempts, ``(delivery_id, ok)`` in the order they finished, into the
    circuit. Returns True when a success closed it (the caller releases held deliveries).

    As one attempt at a time would: a success resets the count of consecutive failures, so
    the count ends as the failures after the last success (added to the stored count when
    the batch had no success); the threshold opens a closed circuit; the half_open probe's
    success closes it and its failure re-opens it. A batch that only succeeded through a
    circuit seen closed without failures writes nothing.
    """
    if not outcomes:
        return False
    last_success = max((i for i, (_, ok) in enumerate(outcomes) if ok), default=None)
    closed = False
    if last_success is not None:
        probe_success = next((d for d, ok in outcomes if ok), None)
        closed = circuit_record_success(destination=destination, delivery_id=probe_success or "", now=now, seen=seen)
    trailing = outcomes[last_success + 1 :] if last_success is not None else outcomes
    if trailing:
        circuit_record_failure(
            destination=destination,
            delivery_id=trailing[0][0],
            now=now,
            count=len(trailing),
        )
    return closed


def circuit_record_success(
    *, destination: Destination, delivery_id: str, now: datetime, seen: tuple[str, int] | None = None
) -> bool:
    """Count a success; True when it closed the circuit (the caller releases held deliveries).

    ``seen`` is the (state, failure_count) the gate read before the attempt: a success through
    a closed circuit cannot close anything, so that write is skipped. The reset of the count
    only writes when there is a count to reset (``last_success_at`` moves with it), and is
    not even sent when the gate saw no failures — the common case of a healthy destination,
    which thereby costs one statement less per delivery. (A failure recorded by another
    worker between that read and this success then stays counted: the two attempts
    overlapped, and neither order is more right than the other.)
    """
    if seen is None or seen[1] > 0:
        CircuitState.objects.filter(destination_id=destination.pk, failure_count__gt=0).update(
            failure_count=0, last_success_at=now, updated_at=now
        )
    if not destination.circuit_breaker_enabled:
        return False
    if seen is not None and seen[0] == CircuitStateValue.CLOSED:
        return False
    closed = CircuitState.objects.filter(
        destination_id=destination.pk, state=CircuitStateValue.HALF_OPEN, probe_delivery_id=delivery_id
    ).update(state=CircuitStateValue.CLOSED, closed_at=now, probe_delivery_id=None, updated_at=now)
    if closed:
        signals.circuit_moved(destination.pk, "half_open", "closed")
    return bool(closed)


def circuit_record_failure(*, destination: Destination, delivery_id: str, now: datetime, count: int = 1) -> None:
    """Count ``count`` consecutive failures; open the circuit at the threshold, or re-open it
    when the half_open probe (``delivery_id``) failed."""
    CircuitState.objects.filter(destination_id=destination.pk).update(
        failure_count=F("failure_count") + count, last_failure_at=now, updated_at=now
    )
    if not destination.circuit_breaker_enabled:
        return
    reopened = CircuitState.objects.filter(
        destination_id=destination.pk, state=CircuitStateValue.HALF_OPEN, probe_delivery_id=delivery_id
    ).update(state=CircuitStateValue.OPEN, opened_at=now, probe_delivery_id=None, updated_at=now)
    if reopened:
        return signals.circuit_moved(destination.pk, "half_open", "open")
    if CircuitState.objects.filter(
        destination_id=destination.pk,
        state=CircuitStateValue.CLOSED,
        failure_count__gte=destination.circuit_breaker_threshold,
    ).update(state=CircuitStateValue.OPEN, opened_at=now, half_opened_at=None, probe_delivery_id=None, updated_at=now):
        signals.circuit_moved(destination.pk, "closed", "open")


def circuit_reset(*, destination: Destination) -> CircuitState:
    """Close the circuit by hand and let the deliveries it held go (oldest first)."""
    with transaction.atomic():
        CircuitState.objects.get_or_create(destination=destination)
        circuit = CircuitState.objects.select_for_update().get(destination=destination)
        previous = circuit.state
        circuit.state = CircuitStateValue.CLOSED
        circuit.failure_count = 0
        circuit.closed_at = timezone.now()
        circuit.opened_at = None
        circuit.half_opened_at = None
        circuit.probe_delivery_id = None
        circuit.save()
        held_deliveries_release(destination=destination)
        if previous != CircuitStateValue.CLOSED:
            signals.circuit_moved(destination.pk, previous, "closed")
    return circuit


def held_deliveries_release(*, destination: Destination) -> int:
    """Make a destination's held deliveries due again (circuit closed, reset or resumed).

    They are woken oldest first and given ``next_attempt_at`` one microsecond apart in
    creation order, so beat (which wakes by ``next_attempt_at``) keeps the same order.
    Returns how many were released.
    """
    now = timezone.now()
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
        if woken:
            destinations_wake_on_commit([destination.pk])
    return len(woken)
