"""The delivery engine: one attempt of one delivery, from claim to its next state.

:func:`process_delivery` is what the Celery task ``deliveries.deliver`` runs (and what tests
call directly). Steps:

1. **Claim** the row with one conditional UPDATE: due (pending/scheduled with
   ``next_attempt_at <= now``) or leased by a worker whose lease expired. It becomes
   ``in_flight`` with a lease; a duplicate or stale task claims nothing and returns.
2. **Gate**: a deleted destination cancels the delivery; a paused or disabled one holds it;
   a route transform still to apply is evaluated in the sandbox (:func:`_transform`; a
   failure dead-letters the delivery); an open circuit holds it (half_open lets exactly one
   probe through); the destination's ``max_concurrency`` / ``rate_limit_per_second`` put it back for a moment.
3. **Send** through the destination's provider (secrets decrypted, instance cached per
   destination version).
4. **Record** a DeliveryAttempt and move the delivery on, in one transaction and only if
   this worker still holds the lease: succeeded; scheduled for a retry (the policy read
   now); or dead (a DeadLetter row, the attempt gets ``is_dlq``/``dlq_at``).
5. **Wake** the retry after commit: a broker countdown on the timed queue
   (``deliveries.dispatch``) when the wait is short, otherwise the delivery is parked in
   the database and beat wakes it when due.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deliveries import circuit, signals
from deliveries.dispatch import delivery_wake_later, delivery_wake_later_on_commit
from deliveries.models import (
    AttemptStatus,
    DeadLetterReason,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    TriggerType,
)
from deliveries.retry import retry_delay_seconds
from deliveries.services import dead_letter_put
from destinations.models import Destination, DestinationStatus
from destinations.providers import OutboundMessage, Outcome, Provider, get_provider
from hookstream import crypto
from intake import transforms
from intake.models import Connection, Subscription

logger = logging.getLogger(__name__)

SIGNING_SECRET_FIELDS = ("secret",)
# A claimed delivery that cannot go now because of a concurrency cap waits about this long.
CONCURRENCY_BACKOFF_SECONDS = (0.05, 0.3)
RETRY_AFTER_STATUSES = {429, 503}
# A failed attempt that held its worker thread this long (or half the destination's time-out,
# if shorter) marks the destination as failing slowly: the failing-destination cap applies.
SLOW_FAILURE_SECONDS = 1.0
# The longest a delivery over the failing-destination cap is put back for.
FAILING_BACKOFF_MAX_SECONDS = 60.0
# A delivery whose transform found no free sandbox process is put back for this long.
TRANSFORM_UNAVAILABLE_BACKOFF_SECONDS = 5.0


# --- providers, cached per worker ------------------------------------------------------

_provider_cache: dict[str, tuple[tuple, Provider, Destination]] = {}
_provider_lock = threading.Lock()


def _version(destination: Destination) -> tuple:
    """What a provider instance depends on. ``updated_at`` alone would miss a queryset
    ``update()`` (which does not touch ``auto_now``), so the sending fields are compared too."""
    return (
        destination.updated_at,
        destination.type,
        destination.url,
        destination.method,
        destination.timeout_ms,
        destination.template,
        destination.name,
        destination.headers,
        destination.provider_config,
        destination.signing_config,
    )


def provider_for(destination: Destination) -> tuple[Provider, Destination]:
    """The provider instance and a copy of the destination with decrypted configs.

    Cached per destination id and version (``updated_at`` and the sending fields): an edit
    (new secret, new URL) makes a new instance, while an unchanged destination reuses its
    clients and pooled connections. Providers receive ``provider_config`` and
    ``signing_config`` in plaintext.
    """
    version = _version(destination)
    with _provider_lock:
        cached = _provider_cache.get(destination.pk)
        if cached and cached[0] == version:
            return cached[1], cached[2]
    provider_cls = get_provider(destination.type)
    plain = copy.copy(destination)
    plain.provider_config = crypto.decrypt_fields(destination.provider_config or {}, provider_cls.secret_fields())
    if destination.signing_config:
        plain.signing_config = crypto.decrypt_fields(destination.signing_config, SIGNING_SECRET_FIELDS)
    provider = provider_cls()
    with _provider_lock:
        _provider_cache[destination.pk] = (version, provider, plain)
    return provider, plain


def outbound_message(delivery: Delivery, attempt_number: int) -> OutboundMessage:
    """What the attempt sends: the route's transformed payload as JSON, else the event body."""
    event = delivery.event
    if delivery.transformed_payload is not None:
        payload = delivery.transformed_payload
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        content_type = "application/json"
    else:
        payload = event.payload
        body = bytes(event.body or b"")
        content_type = event.content_type or "application/octet-stream"
    return OutboundMessage(
        event_id=event.id,
        destination_id=delivery.destination_id,
        attempt_number=attempt_number,
        body=body,
        content_type=content_type,
        payload=payload,
        source_id=event.source_id,
        topic=event.topic.slug if event.topic is not None else None,
        method=event.method,
        headers=dict(event.headers or {}),
        received_at=event.received_at,
    )


# --- claim and small state moves -------------------------------------------------------


def _claim(delivery_id: str, now: datetime) -> datetime | None:
    """Lease the delivery if it is due; returns the lease (the token of this claim)."""
    lease = now + timedelta(seconds=settings.HOOKSTREAM_LEASE_SECONDS)
    claimed = Delivery.objects.filter(
        Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED], next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.IN_FLIGHT, lease_expires_at__lt=now),
        pk=delivery_id,
    ).update(status=DeliveryStatus.IN_FLIGHT, lease_expires_at=lease, updated_at=now)
    return lease if claimed == 1 else None


def _mine(delivery_id: str, lease: datetime):
    return Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.IN_FLIGHT, lease_expires_at=lease)


def _hold(delivery: Delivery, lease: datetime, now: datetime) -> None:
    _mine(delivery.pk, lease).update(status=DeliveryStatus.HELD, lease_expires_at=None, woken_at=None, updated_at=now)


def _cancel(delivery: Delivery, lease: datetime, now: datetime) -> None:
    _mine(delivery.pk, lease).update(
        status=DeliveryStatus.CANCELLED, lease_expires_at=None, completed_at=now, updated_at=now
    )


def _put_back(delivery: Delivery, lease: datetime, now: datetime, wait: float) -> None:
    """Not attempted (a cap was reached): due again after ``wait`` seconds, not counted."""
    due = now + timedelta(seconds=wait)
    with transaction.atomic():
        moved = _mine(delivery.pk, lease).update(
            status=DeliveryStatus.PENDING, next_attempt_at=due, lease_expires_at=None, woken_at=due, updated_at=now
        )
        if moved:
            delivery_wake_later_on_commit(delivery.pk, wait)


def _slow_key(destination_id: str) -> str:
    return f"hs:dst-slow:{destination_id}"


def _slow_failure(destination: Destination, duration_ms: int) -> bool:
    """Did a failed attempt hold its worker thread long (a time-out, a stalled connection)?"""
    threshold = min(SLOW_FAILURE_SECONDS, destination.timeout_ms / 2000.0)
    return duration_ms >= threshold * 1000


def failing_slowly(destination: Destination, failure_count: int) -> bool:
    """Is the destination failing, and were its recent failures slow?

    Only then does the failing-destination cap apply: a target that answers 500 at once
    costs the workers no more than a healthy one, and capping it would only delay its
    retries. The mark is kept in the cache (Redis when ``REDIS_URL`` is set) by
    :func:`_record`; the cache is only asked when the circuit counts failures, so healthy
    destinations pay nothing for it.
    """
    return failure_count > 0 and bool(cache.get(_slow_key(destination.pk)))


def _over_limits(destination: Destination, delivery_id: str, now: datetime, *, failing: bool = False) -> float | None:
    """Seconds to wait when the destination's concurrency cap or rate limit is reached.

    A destination failing slowly (``failing``: its last failures were time-outs or stalls,
    see :func:`failing_slowly`) is capped at ``HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT``
    attempts in flight even without its own ``max_concurrency``: a target that hangs for
    ``timeout_ms`` on every request must not occupy every worker thread and starve the
    healthy destinations while its circuit breaker counts up to the threshold (or forever,
    with the breaker off). Deliveries over that cap are put back for a wait drawn evenly
    between half a time-out and one time-out per ``cap`` of its pending backlog: the
    re-checks are spread so that about ``cap`` come due per time-out — as many as the cap
    lets through, so its slots stay used while the backlog costs few claims, however long.
    """
    cap = destination.max_concurrency
    backoff = random.uniform(*CONCURRENCY_BACKOFF_SECONDS)
    failing_cap = settings.HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT
    failing = failing and bool(failing_cap) and (cap is None or failing_cap < cap)
    if failing:
        cap = failing_cap
    if cap:
        in_flight = Delivery.objects.filter(
            destination_id=destination.pk, status=DeliveryStatus.IN_FLIGHT, lease_expires_at__gt=now
        ).count()
        if in_flight > cap:
            if failing:
                backlog = Delivery.objects.filter(destination_id=destination.pk, status=DeliveryStatus.PENDING).count()
                rounds = max(1.0, backlog / cap)
                timeout = min(destination.timeout_ms / 1000.0, 5.0)
                longest = max(timeout, min(timeout * rounds, FAILING_BACKOFF_MAX_SECONDS))
                backoff = random.uniform(0.5 * timeout, longest)
            return backoff
    if destination.rate_limit_per_second:
        return _rate_slot_wait(destination, delivery_id)
    return None


def _rate_slot_wait(destination: Destination, delivery_id: str) -> float | None:
    """``rate_limit_per_second``: each attempt takes a time slot of ``1/rate`` seconds.

    Slots are reserved with an atomic cache ``add`` (Redis when ``REDIS_URL`` is set, so the
    limit holds across workers; per process otherwise). A delivery finding the current slot
    taken reserves the next free one and is put back until it starts, so a backlog is sent
    evenly at the rate instead of in bursts, and at most ``rate`` attempts start in any
    aligned second.
    """
    rate = destination.rate_limit_per_second
    if not rate:
        return None
    width = 1.0 / rate
    now = time.time()
    current = int(now / width)
    for slot in range(current, current + rate * 10):
        key = f"hs:dst-slot:{destination.pk}:{slot}"
        if cache.add(key, delivery_id, 30) or cache.get(key) == delivery_id:
            return None if slot == current else slot * width - now + 0.001
    return 10.0  # ten seconds of slots reserved already: look again later


# --- send and record --------------------------------------------------------------------


def _send(provider: Provider, destination: Destination, message: OutboundMessage) -> tuple[Outcome, int]:
    started = time.monotonic()
    try:
        outcome = provider.send(destination, message)
    except Exception as exc:  # a provider bug must not lose the delivery: retry it
        logger.exception("provider %s raised while sending %s", destination.type, message.event_id)
        outcome = Outcome.retry(f"{type(exc).__name__}: {exc}")
    duration_ms = int((time.monotonic() - started) * 1000)
    return outcome, duration_ms


def _truncate(text: str) -> str:
    limit = settings.HOOKSTREAM_RESPONSE_BODY_LIMIT
    text = text or ""
    return text if len(text) <= limit else text[:limit]


def _next_wait(destination: Destination, retry_number: int, outcome: Outcome) -> float:
    wait = retry_delay_seconds(destination, retry_number)
    if outcome.retry_after is not None and outcome.response_status in RETRY_AFTER_STATUSES:
        asked = min(max(float(outcome.retry_after), 0.0), settings.HOOKSTREAM_RETRY_AFTER_CAP_SECONDS)
        wait = max(wait, asked)
    return wait


def _record(
    *,
    delivery: Delivery,
    destination: Destination,
    lease: datetime,
    attempt_number: int,
    trigger_type: str,
    outcome: Outcome,
    duration_ms: int,
    seen: tuple[str, int] | None = None,
) -> float | None:
    """Store the attempt and the delivery's next state. Returns the countdown to wake a
    scheduled retry through the broker, or None."""
    now = timezone.now()
    attempt = DeliveryAttempt(
        organization_id=delivery.organization_id,
        delivery_id=delivery.pk,
        event_id=delivery.event_id,
        destination_id=delivery.destination_id,
        connection_id=delivery.connection_id,
        attempt_number=attempt_number,
        status=AttemptStatus.SUCCESS if outcome.ok else AttemptStatus.FAILED,
        request_url=(outcome.request_url or "")[:2048],
        request_method=(outcome.request_method or "")[:32],
        request_headers=outcome.request_headers or {},
        request_body_size=outcome.request_body_size or 0,
        response_status=outcome.response_status,
        response_headers=outcome.response_headers or {},
        response_body=_truncate(outcome.response_body),
        duration_ms=duration_ms,
        error=outcome.error or "",
        trigger_type=trigger_type,
        created_at=now,
    )
    countdown = None
    with transaction.atomic():
        signals.attempt_recorded_on_commit(attempt=attempt, delivery=delivery, destination=destination, outcome=outcome)
        if outcome.ok:
            moved = _mine(delivery.pk, lease).update(
                status=DeliveryStatus.SUCCEEDED,
                attempt_count=attempt_number,
                last_error="",
                lease_expires_at=None,
                completed_at=now,
                updated_at=now,
            )
            attempt.save(force_insert=True)
            if circuit.circuit_record_success(destination=destination, delivery_id=delivery.pk, now=now, seen=seen):
                circuit.held_deliveries_release(destination=destination)
            if seen is not None and seen[1] > 0:
                _cache_call(cache.delete, _slow_key(destination.pk))  # it answers again: no longer slow
            return None

        # The policy is read at the moment of failure: an edit made since the claim applies.
        policy = Destination.all_objects.filter(pk=destination.pk).first() or destination
        retries_used = attempt_number - 1 - delivery.cycle_start_attempt
        if outcome.retryable and retries_used < policy.retry_max_attempts:
            wait = _next_wait(policy, retries_used + 1, outcome)
            due = now + timedelta(seconds=wait)
            short = wait <= settings.HOOKSTREAM_MAX_BROKER_COUNTDOWN_SECONDS
            moved = _mine(delivery.pk, lease).update(
                status=DeliveryStatus.SCHEDULED,
                attempt_count=attempt_number,
                next_attempt_at=due,
                # A short wait is carried by a broker countdown; beat only steps in if that
                # message is lost. A long one is parked: beat wakes it when due.
                woken_at=due if short else None,
                last_error=outcome.error or "",
                lease_expires_at=None,
                updated_at=now,
            )
            attempt.next_retry_at = due
            if moved and short:
                countdown = wait
        else:
            reason = DeadLetterReason.RETRIES_EXHAUSTED if outcome.retryable else DeadLetterReason.PERMANENT_FAILURE
            moved = _mine(delivery.pk, lease).update(
                status=DeliveryStatus.DEAD,
                attempt_count=attempt_number,
                last_error=outcome.error or "",
                lease_expires_at=None,
                completed_at=now,
                updated_at=now,
            )
            if moved:
                attempt.is_dlq = True
                attempt.dlq_at = now
                dead_letter_put(delivery=delivery, reason=reason, error=outcome.error or "", now=now)
        attempt.save(force_insert=True)
        circuit.circuit_record_failure(destination=destination, delivery_id=delivery.pk, now=now)
        if _slow_failure(destination, duration_ms):
            _mark_slow(destination)
        if not moved:
            logger.warning("lease of %s was lost during the attempt; attempt recorded only", delivery.pk)
    return countdown


def _cache_call(method, *args) -> None:
    """A cache write that must not fail the attempt's record (the cache only tunes the cap)."""
    try:
        method(*args)
    except Exception:
        logger.warning("cache unavailable: the failing-destination mark was not updated", exc_info=True)


def _mark_slow(destination: Destination) -> None:
    """Remember that ``destination`` fails slowly, for about two time-outs or 30 s at least."""
    ttl = max(30, int(destination.timeout_ms / 1000.0 * 2))
    _cache_call(cache.set, _slow_key(destination.pk), 1, ttl)


def _failing_slowly_safe(destination: Destination, failure_count: int) -> bool:
    try:
        return failing_slowly(destination, failure_count)
    except Exception:  # no cache: cap every failing destination, as the safe side
        logger.warning("cache unavailable: treating failing destination %s as slow", destination.pk, exc_info=True)
        return failure_count > 0


# --- the route's transform: tenant code, evaluated in the sandbox (issue 12) -----------------


def _route_transform(delivery: Delivery) -> str | None:
    """The transform of the delivery's route now ("" for none), or None when the route is gone."""
    if delivery.connection_id:
        connections = Connection.objects.filter(pk=delivery.connection_id)
        return connections.values_list("transform_expression", flat=True).first()
    if delivery.subscription_id:
        routes = Subscription.objects.filter(pk=delivery.subscription_id)
        return routes.values_list("transform_expression", flat=True).first()
    return None


def _transform(delivery: Delivery, lease: datetime, now: datetime) -> bool:
    """Apply the delivery's pending transform; False when the delivery is not to be sent now.

    1. Evaluate the route's transform in the sandbox (``intake.transforms``) and store the
       result: retries send the same payload and never evaluate it again.
    2. A failure, or a breached time or memory limit, is permanent: the delivery is dead-
       lettered (``transform_failed`` / ``transform_limit``) with no attempt, and the circuit
       is not touched (the destination did nothing wrong).
    3. No sandbox process could run it: put back for a moment, not counted as an attempt.
    """
    expression = _route_transform(delivery)
    try:
        if expression is None:
            raise transforms.TransformError("its connection or subscription was deleted before the transform ran")
        payload = transforms.transform_apply(expression, delivery.event.payload) if expression else None
    except transforms.TransformUnavailable as exc:
        logger.warning("transform of delivery %s put back: %s", delivery.pk, exc)
        _put_back(delivery, lease, now, TRANSFORM_UNAVAILABLE_BACKOFF_SECONDS)
        return False
    except transforms.TransformError as exc:
        if isinstance(exc, transforms.TransformLimitExceeded):
            reason, error = DeadLetterReason.TRANSFORM_LIMIT, str(exc)
        else:
            reason, error = DeadLetterReason.TRANSFORM_FAILED, f"transform failed: {exc}"
        done = timezone.now()
        with transaction.atomic():
            moved = _mine(delivery.pk, lease).update(
                status=DeliveryStatus.DEAD, last_error=error, lease_expires_at=None, completed_at=done, updated_at=done
            )
            if moved:
                dead_letter_put(delivery=delivery, reason=reason, error=error, now=done)
        return False
    _mine(delivery.pk, lease).update(transformed_payload=payload, transform_pending=False, updated_at=timezone.now())
    delivery.transformed_payload, delivery.transform_pending = payload, False
    return True


# --- the entry point ----------------------------------------------------------------------


def process_delivery(delivery_id: str) -> None:
    """Attempt delivery ``delivery_id`` once if it is due (see the module docstring).

    Safe to call any number of times, concurrently: only the caller whose conditional
    UPDATE claims the row does anything.
    """
    now = timezone.now()
    lease = _claim(delivery_id, now)
    if lease is None:
        return
    delivery = Delivery.objects.select_related("event", "event__topic", "destination", "destination__circuit").get(
        pk=delivery_id
    )
    destination = delivery.destination
    if destination.deleted_at is not None:
        _cancel(delivery, lease, now)
        return
    if destination.status != DestinationStatus.ACTIVE:
        _hold(delivery, lease, now)
        return
    if delivery.transform_pending and not _transform(delivery, lease, now):
        return
    allowed, seen = circuit.circuit_gate(destination=destination, delivery=delivery, now=now)
    if not allowed:
        _hold(delivery, lease, now)
        return
    wait = _over_limits(destination, delivery_id, now, failing=_failing_slowly_safe(destination, seen[1]))
    if wait is not None:
        _put_back(delivery, lease, now, wait)
        return

    # A destination whose time-out is longer than the lease keeps its lease for the attempt.
    needed = timedelta(milliseconds=destination.timeout_ms) + timedelta(seconds=30)
    if lease - now < needed:
        longer = now + needed
        if _mine(delivery_id, lease).update(lease_expires_at=longer):
            lease = longer

    attempt_number = delivery.attempt_count + 1
    first_of_cycle = delivery.attempt_count == delivery.cycle_start_attempt
    trigger_type = delivery.trigger_type if first_of_cycle else TriggerType.RETRY
    try:
        provider, plain_destination = provider_for(destination)
        message = outbound_message(delivery, attempt_number)
    except Exception as exc:
        # Nothing can be sent as configured (unknown type, a secret that no longer decrypts):
        # retrying cannot help, so it is a permanent failure rather than a stuck lease.
        logger.exception("cannot prepare delivery %s", delivery_id)
        outcome, duration_ms = Outcome.permanent(f"cannot prepare the delivery: {exc}"), 0
    else:
        outcome, duration_ms = _send(provider, plain_destination, message)
    countdown = _record(
        delivery=delivery,
        destination=destination,
        lease=lease,
        attempt_number=attempt_number,
        trigger_type=trigger_type,
        outcome=outcome,
        duration_ms=duration_ms,
        seen=seen,
    )
    if countdown is not None:
        delivery_wake_later(delivery_id, countdown)
