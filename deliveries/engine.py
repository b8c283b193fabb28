"""The delivery engine: a destination's due deliveries, in batches, from claim to next state.

The broker carries wake-ups per destination (``deliveries.dispatch``); the Celery task
``deliveries.deliver_destination`` runs :func:`process_deliveries`, which repeats, up to
``HOOKSTREAM_DESTINATION_BATCHES`` times:

1. **Claim** up to N due deliveries of the destination in one statement (PostgreSQL:
   ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT N) RETURNING id``), each
   ``in_flight`` under one lease (due retries first, then oldest due first: :data:`CLAIM_ORDER`);
   racing workers claim disjoint rows, and a duplicate or stale wake-up claims nothing.
   N adapts per destination (:class:`_Pace`): at most
   ``HOOKSTREAM_BATCH_SIZE``, smaller when attempts are slow or failing, and never more than
   the failures the circuit breaker has left before it opens.
2. **Gate** once for the batch: a deleted destination cancels them; a paused or disabled
   one holds them; a route transform still to apply is evaluated in the sandbox
   (:func:`_transform`); an open circuit holds them (half_open lets exactly one probe
   through); ``max_concurrency``, the failing-destination cap and ``rate_limit_per_second``
   put the excess back for a moment (not attempted, not counted).
3. **Send** through the destination's provider (one cached instance per destination
   version, its keep-alive connections pinned): one after the other, or in waves of up to
   :data:`SEND_CONCURRENCY` (and the caps) when the destination is slow to answer. A
   failure that trips the breaker's count, or a slow one, stops the batch: the rest go
   back unattempted and are gated again.
4. **Record** every attempt with one multi-row INSERT and every state move with one
   ``UPDATE … FROM (VALUES …)``, in one transaction and only for the rows this worker still
   leases: succeeded; scheduled for a retry (the policy read now); or dead (DeadLetter rows,
   the attempt gets ``is_dlq``/``dlq_at``). The circuit folds the batch's outcomes at once.
5. **Wake** the retries after commit: short waits as timed wake-ups of the destination
   (one per destination and twentieth of a second, at the moment the retries come due),
   long ones parked in the database for beat.

When due work remains after the last batch, the task wakes the destination again: that
message queues behind every other destination's, so a busy destination yields its worker
thread. :func:`process_delivery` is the one-delivery form (tests, legacy messages).
"""

from __future__ import annotations

import copy
import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from deliveries import circuit, signals
from deliveries.dispatch import (
    destination_wake,
    destination_wake_at_on_commit,
    destination_wake_taken,
)
from deliveries.models import (
    AttemptStatus,
    DeadLetterReason,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    TriggerType,
)
from deliveries.retry import retry_delay_seconds
from deliveries.services import dead_letters_put
from destinations.models import CircuitStateValue, Destination, DestinationStatus
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
# Attempts of one batch sent at once, at most, when the destination is slow to answer
# (its recent attempts took PARALLEL_LATENCY_SECONDS or more); a fast one is sent to one
# request after the other, which costs the worker least.
SEND_CONCURRENCY = 8
PARALLEL_LATENCY_SECONDS = 0.02
# N is chosen so that a batch takes about this long (from the attempts' recent latency).
BATCH_SECONDS = 0.25
# A wake-up stops claiming batches after this long and wakes the destination again
# (behind the other destinations' wake-ups).
TASK_SECONDS = 0.5
# At most this many workers drain one destination's backlog side by side: a full batch
# wakes a helper while fewer run. (Per-destination caps still bound what they send.)
DESTINATION_RUNNERS = 2
# A failing destination's backlog, put back over many seconds, is woken once per this step.
COARSE_WAKE_SECONDS = 1.0
# The lease covers a batch's attempts; sending stops this long before it runs out.
LEASE_MARGIN_SECONDS = 15.0


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


# --- adaptive batch size, per destination and worker process --------------------------------


@dataclass
class _Pace:
    size: int  # the next batch's N
    latency: float  # seconds per attempt, a moving average


_paces: dict[str, _Pace] = {}
_paces_lock = threading.Lock()


def _pace(destination_id: str) -> _Pace | None:
    with _paces_lock:
        return _paces.get(destination_id)


def _pace_update(destination_id: str, *, latencies: list[float], failures: int, concurrency: int) -> None:
    """Halve N after ``failures`` (slow ones, or ones the breaker counts), double it
    otherwise; never more than a batch of about :data:`BATCH_SECONDS` at the observed
    latency."""
    if not latencies:
        return
    largest = settings.HOOKSTREAM_BATCH_SIZE
    mean = sum(latencies) / len(latencies)
    with _paces_lock:
        pace = _paces.get(destination_id) or _Pace(size=largest, latency=mean)
        pace.latency = 0.5 * pace.latency + 0.5 * mean
        size = max(1, pace.size // 2) if failures else pace.size * 2
        by_time = int(BATCH_SECONDS * max(concurrency, 1) / max(pace.latency, 1e-4))
        pace.size = max(1, min(size, by_time, largest))
        _paces[destination_id] = pace


def _batch_size(destination: Destination, seen: tuple[str, int]) -> int:
    size = settings.HOOKSTREAM_BATCH_SIZE
    pace = _pace(destination.pk)
    if pace is not None:
        size = min(size, pace.size)
    if destination.circuit_breaker_enabled and seen[0] == CircuitStateValue.CLOSED and seen[1] > 0:
        # Never send more failures than the breaker has left before it opens.
        size = min(size, max(1, destination.circuit_breaker_threshold - seen[1]))
    return max(1, size)


def _parallel(destination_id: str) -> bool:
    pace = _pace(destination_id)
    return pace is not None and pace.latency >= PARALLEL_LATENCY_SECONDS


def _runners_key(destination_id: str) -> str:
    return f"hs:runners:{destination_id}"


def _runner_enter(destination_id: str) -> int:
    """Count this task among the destination's runners; returns how many run (1 without a cache)."""
    try:
        cache.add(_runners_key(destination_id), 0, 60)
        return int(cache.incr(_runners_key(destination_id)))
    except Exception:
        return 1


def _runner_exit(destination_id: str) -> None:
    try:
        cache.decr(_runners_key(destination_id))
    except Exception:
        pass


# --- claim and state moves -------------------------------------------------------------------

_DUE = ("pending", "scheduled")
# Due retries ("scheduled") first, then the rest oldest due first: a retry that comes due is
# not queued behind a backlog of new deliveries (as on the broker's timed queue).
CLAIM_ORDER = ("-status", "next_attempt_at", "created_at", "id")


def _claim_batch(destination_id: str, ids: list[str] | None, now: datetime, lease: datetime, limit: int) -> list[str]:
    """Lease up to ``limit`` due deliveries of the destination (or of ``ids``, which may also
    be leased by a worker whose lease expired), in :data:`CLAIM_ORDER`; returns their ids."""
    if connection.vendor == "postgresql":
        conditions = "destination_id = %s AND status IN ('pending', 'scheduled') AND next_attempt_at <= %s"
        params: list = [destination_id, now]
        if ids is not None:
            conditions = (
                "destination_id = %s AND id = ANY(%s) AND ((status IN ('pending', 'scheduled') "
                "AND next_attempt_at <= %s) OR (status = 'in_flight' AND lease_expires_at < %s))"
            )
            params = [destination_id, list(ids), now, now]
        sql = (
            "UPDATE deliveries_delivery SET status = 'in_flight', lease_expires_at = %s, updated_at = %s "
            f"WHERE id IN (SELECT id FROM deliveries_delivery WHERE {conditions} "
            "ORDER BY status DESC, next_attempt_at, created_at, id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [lease, now, *params, limit])
            return [row[0] for row in cursor.fetchall()]
    # SQLite (the embedded default): writes are serialized; the conditional UPDATE decides.
    due = Q(status__in=_DUE, next_attempt_at__lte=now)
    if ids is not None:
        due |= Q(status=DeliveryStatus.IN_FLIGHT, lease_expires_at__lt=now)
    rows = Delivery.objects.filter(due, destination_id=destination_id)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    picked = list(rows.order_by(*CLAIM_ORDER).values_list("id", flat=True)[:limit])
    if not picked:
        return []
    Delivery.objects.filter(due, pk__in=picked).update(
        status=DeliveryStatus.IN_FLIGHT, lease_expires_at=lease, updated_at=now
    )
    return list(
        Delivery.objects.filter(pk__in=picked, status=DeliveryStatus.IN_FLIGHT, lease_expires_at=lease).values_list(
            "id", flat=True
        )
    )


@dataclass
class _Move:
    """A leased delivery's next state; None keeps the column as it is."""

    id: str
    status: str
    attempt_count: int | None = None
    next_attempt_at: datetime | None = None
    woken_at: datetime | None = None
    set_woken: bool = False
    last_error: str | None = None
    completed_at: datetime | None = None


def _move(moves: list[_Move], lease: datetime, now: datetime) -> set[str]:
    """Apply ``moves`` to the rows this worker still leases (one statement on PostgreSQL);
    the lease is released. Returns the ids that moved."""
    if not moves:
        return set()
    if connection.vendor == "postgresql":
        row = "(%s, %s, %s::integer, %s::timestamptz, %s::timestamptz, %s::boolean, %s, %s::timestamptz)"
        params: list = [now]
        for m in moves:
            params += [m.id, m.status, m.attempt_count, m.next_attempt_at, m.woken_at, m.set_woken]
            params += [m.last_error, m.completed_at]
        params.append(lease)
        sql = (
            "UPDATE deliveries_delivery AS d SET status = v.status, "
            "attempt_count = COALESCE(v.attempt_count, d.attempt_count), "
            "next_attempt_at = COALESCE(v.next_attempt_at, d.next_attempt_at), "
            "woken_at = CASE WHEN v.set_woken THEN v.woken_at ELSE d.woken_at END, "
            "last_error = COALESCE(v.last_error, d.last_error), "
            "completed_at = COALESCE(v.completed_at, d.completed_at), "
            "lease_expires_at = NULL, updated_at = %s "
            f"FROM (VALUES {', '.join([row] * len(moves))}) "
            "AS v(id, status, attempt_count, next_attempt_at, woken_at, set_woken, last_error, completed_at) "
            "WHERE d.id = v.id AND d.status = 'in_flight' AND d.lease_expires_at = %s RETURNING d.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {r[0] for r in cursor.fetchall()}
    moved = set()
    for m in moves:
        fields: dict = {"status": m.status, "lease_expires_at": None, "updated_at": now}
        for name in ("attempt_count", "next_attempt_at", "last_error", "completed_at"):
            if getattr(m, name) is not None:
                fields[name] = getattr(m, name)
        if m.set_woken:
            fields["woken_at"] = m.woken_at
        if _mine(m.id, lease).update(**fields):
            moved.add(m.id)
    return moved


def _mine(delivery_id: str, lease: datetime):
    return Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.IN_FLIGHT, lease_expires_at=lease)


def _hold(deliveries: list[Delivery], lease: datetime, now: datetime) -> None:
    moves = [_Move(d.pk, DeliveryStatus.HELD, set_woken=True) for d in deliveries]
    _move(moves, lease, now)


def _cancel(deliveries: list[Delivery], lease: datetime, now: datetime) -> None:
    _move([_Move(d.pk, DeliveryStatus.CANCELLED, completed_at=now) for d in deliveries], lease, now)


def _put_back(
    destination_id: str,
    waits: list[tuple[Delivery, float]],
    lease: datetime,
    now: datetime,
    *,
    wake: bool = True,
    coarse: bool = False,
) -> None:
    """Not attempted (a cap, a rate slot, a stopped batch): due again after each wait, not
    counted, and the destination woken for them by timed wake-ups (``wake``; else the
    caller wakes it) — one per second in which they come due when ``coarse`` (a failing
    destination's spread backlog: one message per row would cost more than the rows)."""
    if not waits:
        return
    moves = []
    for delivery, wait in waits:
        due = now + timedelta(seconds=wait)
        moves.append(_Move(delivery.pk, DeliveryStatus.PENDING, next_attempt_at=due, woken_at=due, set_woken=True))
    with transaction.atomic():
        if _move(moves, lease, now) and wake:
            moments = [m.next_attempt_at for m in moves if m.next_attempt_at]
            if coarse:
                destination_wake_at_on_commit(destination_id, moments, step=COARSE_WAKE_SECONDS)
            else:
                destination_wake_at_on_commit(destination_id, moments)


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
    :func:`_record_batch`; the cache is only asked when the circuit counts failures, so healthy
    destinations pay nothing for it.
    """
    return failure_count > 0 and bool(cache.get(_slow_key(destination.pk)))


def _cap(destination: Destination, failing: bool) -> tuple[int | None, bool]:
    """The destination's cap on attempts in flight, and whether it is the failing cap.

    A destination failing slowly (``failing``: its last failures were time-outs or stalls,
    see :func:`failing_slowly`) is capped at ``HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT``
    attempts in flight even without its own ``max_concurrency``: a target that hangs for
    ``timeout_ms`` on every request must not occupy every worker thread and starve the
    healthy destinations while its circuit breaker counts up to the threshold (or forever,
    with the breaker off).
    """
    cap = destination.max_concurrency
    failing_cap = settings.HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT
    if failing and failing_cap and (cap is None or failing_cap < cap):
        return failing_cap, True
    return cap, False


def _over_cap(
    destination: Destination, deliveries: list[Delivery], now: datetime, cap: int, failing: bool
) -> tuple[list[Delivery], list[tuple[Delivery, float]]]:
    """Split a claimed batch by the cap: the deliveries that may go, and the rest with the
    wait each is put back for.

    The attempts in flight are counted after this worker's claim (its own rows included),
    so of two workers racing past the cap at least one sees the other. A healthy capped
    destination's excess waits a moment (:data:`CONCURRENCY_BACKOFF_SECONDS`). A failing
    one's waits are drawn evenly between half a time-out and one time-out per ``cap`` of
    its pending backlog (≤ :data:`FAILING_BACKOFF_MAX_SECONDS`): the re-checks are spread so
    that about ``cap`` come due per time-out — as many as the cap lets through, so its slots
    stay used while the backlog costs few claims, however long.
    """
    in_flight = Delivery.objects.filter(
        destination_id=destination.pk, status=DeliveryStatus.IN_FLIGHT, lease_expires_at__gt=now
    ).count()
    free = max(0, cap - (in_flight - len(deliveries)))
    going, excess = deliveries[:free], deliveries[free:]
    if not excess:
        return going, []
    if not failing:
        return going, [(d, random.uniform(*CONCURRENCY_BACKOFF_SECONDS)) for d in excess]
    backlog = (
        len(excess) + Delivery.objects.filter(destination_id=destination.pk, status=DeliveryStatus.PENDING).count()
    )
    rounds = max(1.0, backlog / cap)
    timeout = min(destination.timeout_ms / 1000.0, 5.0)
    longest = max(timeout, min(timeout * rounds, FAILING_BACKOFF_MAX_SECONDS))
    return going, [(d, random.uniform(0.5 * timeout, longest)) for d in excess]


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
        _put_back(delivery.destination_id, [(delivery, TRANSFORM_UNAVAILABLE_BACKOFF_SECONDS)], lease, now)
        return False
    except transforms.TransformError as exc:
        if isinstance(exc, transforms.TransformLimitExceeded):
            reason, error = DeadLetterReason.TRANSFORM_LIMIT, str(exc)
        else:
            reason, error = DeadLetterReason.TRANSFORM_FAILED, f"transform failed: {exc}"
        done = timezone.now()
        with transaction.atomic():
            if _move([_Move(delivery.pk, DeliveryStatus.DEAD, last_error=error, completed_at=done)], lease, done):
                dead_letters_put(items=[(delivery, reason, error)], now=done)
        return False
    _mine(delivery.pk, lease).update(transformed_payload=payload, transform_pending=False, updated_at=timezone.now())
    delivery.transformed_payload, delivery.transform_pending = payload, False
    return True


# --- one batch -------------------------------------------------------------------------------


@dataclass
class _Attempt:
    delivery: Delivery
    attempt_number: int
    trigger_type: str
    outcome: Outcome
    duration_ms: int


def _attempt(provider: Provider | None, destination: Destination, delivery: Delivery) -> _Attempt:
    attempt_number = delivery.attempt_count + 1
    first_of_cycle = delivery.attempt_count == delivery.cycle_start_attempt
    trigger_type = delivery.trigger_type if first_of_cycle else TriggerType.RETRY
    try:
        if provider is None:
            raise LookupError(f"no provider for destination type {destination.type!r}")
        message = outbound_message(delivery, attempt_number)
    except Exception as exc:
        # Nothing can be sent as configured (unknown type, a secret that no longer decrypts):
        # retrying cannot help, so it is a permanent failure rather than a stuck lease.
        logger.exception("cannot prepare delivery %s", delivery.pk)
        outcome, duration_ms = Outcome.permanent(f"cannot prepare the delivery: {exc}"), 0
    else:
        outcome, duration_ms = _send(provider, destination, message)
    return _Attempt(delivery, attempt_number, trigger_type, outcome, duration_ms)


def _stops_batch(destination: Destination, attempt: _Attempt) -> bool:
    """After this attempt, is the rest of the batch to be gated again rather than sent?
    A failure counted by the breaker (the circuit may have to open), or a slow one (the
    failing-destination cap may apply)."""
    if attempt.outcome.ok:
        return False
    return destination.circuit_breaker_enabled or _slow_failure(destination, attempt.duration_ms)


def _send_all(
    destination: Destination, deliveries: list[Delivery], *, concurrency: int, deadline: float
) -> tuple[list[_Attempt], list[Delivery]]:
    """Send ``deliveries`` in waves of ``concurrency``; returns the attempts made and the
    deliveries left unsent (a wave stopped the batch, or the lease would run out)."""
    try:
        provider, plain = provider_for(destination)
    except Exception:
        logger.exception("no provider for destination %s", destination.pk)
        provider, plain = None, destination
    timeout = destination.timeout_ms / 1000.0
    attempts: list[_Attempt] = []
    executor = ThreadPoolExecutor(concurrency, thread_name_prefix="send") if concurrency > 1 else None
    try:
        for start in range(0, len(deliveries), concurrency):
            if attempts and (
                time.monotonic() + timeout > deadline
                or any(_stops_batch(destination, a) for a in attempts[-concurrency:])
            ):
                return attempts, deliveries[start:]
            wave = deliveries[start : start + concurrency]
            if executor is None:
                attempts.append(_attempt(provider, plain, wave[0]))
            else:
                attempts += list(executor.map(lambda d: _attempt(provider, plain, d), wave))
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    return attempts, []


def _record_batch(
    destination: Destination, lease: datetime, attempts: list[_Attempt], seen: tuple[str, int] | None
) -> None:
    """Store the attempts and the deliveries' next states, in one transaction and only for
    the rows this worker still leases (a row whose lease was lost keeps its state; its
    attempt is recorded all the same). Then wake the short retries, after commit."""
    if not attempts:
        return
    now = timezone.now()
    failed = [a for a in attempts if not a.outcome.ok]
    # The policy is read at the moment of failure: an edit made since the claim applies.
    policy = (Destination.all_objects.filter(pk=destination.pk).first() or destination) if failed else destination
    moves, retry_at, dead, short_waits = [], {}, {}, set()
    for a in attempts:
        outcome, delivery = a.outcome, a.delivery
        if outcome.ok:
            moves.append(
                _Move(delivery.pk, DeliveryStatus.SUCCEEDED, a.attempt_number, last_error="", completed_at=now)
            )
            continue
        retries_used = a.attempt_number - 1 - delivery.cycle_start_attempt
        if outcome.retryable and retries_used < policy.retry_max_attempts:
            wait = _next_wait(policy, retries_used + 1, outcome)
            due = now + timedelta(seconds=wait)
            # A short wait is carried by a timed wake-up; beat only steps in if that message
            # is lost. A long one is parked: beat wakes it when due.
            short = wait <= settings.HOOKSTREAM_MAX_BROKER_COUNTDOWN_SECONDS
            moves.append(
                _Move(
                    delivery.pk,
                    DeliveryStatus.SCHEDULED,
                    a.attempt_number,
                    next_attempt_at=due,
                    woken_at=due if short else None,
                    set_woken=True,
                    last_error=outcome.error or "",
                )
            )
            retry_at[delivery.pk] = due
            if short:
                short_waits.add(delivery.pk)
        else:
            reason = DeadLetterReason.RETRIES_EXHAUSTED if outcome.retryable else DeadLetterReason.PERMANENT_FAILURE
            dead[delivery.pk] = reason
            moves.append(
                _Move(
                    delivery.pk, DeliveryStatus.DEAD, a.attempt_number, last_error=outcome.error or "", completed_at=now
                )
            )
    with transaction.atomic():
        moved = _move(moves, lease, now)
        # Registered first, so the retries' wake-ups go before the signal receivers run.
        destination_wake_at_on_commit(destination.pk, [retry_at[d] for d in short_waits if d in moved])
        rows = []
        for a in attempts:
            attempt = _attempt_row(a, now)
            attempt.next_retry_at = retry_at.get(a.delivery.pk)
            if a.delivery.pk in dead and a.delivery.pk in moved:
                attempt.is_dlq, attempt.dlq_at = True, now
            signals.attempt_recorded_on_commit(
                attempt=attempt, delivery=a.delivery, destination=destination, outcome=a.outcome
            )
            rows.append(attempt)
        DeliveryAttempt.objects.bulk_create(rows)
        dead_letters_put(
            items=[
                (a.delivery, dead[a.delivery.pk], a.outcome.error or "")
                for a in attempts
                if a.delivery.pk in dead and a.delivery.pk in moved
            ],
            now=now,
        )
        outcomes = [(a.delivery.pk, a.outcome.ok) for a in attempts]
        if circuit.circuit_record(destination=destination, outcomes=outcomes, now=now, seen=seen):
            circuit.held_deliveries_release(destination=destination)
        # Before the commit (and the signals' receivers): whoever sees the failure counted
        # sees the mark too.
        if failed and any(_slow_failure(destination, a.duration_ms) for a in failed):
            _mark_slow(destination)
        elif not failed and seen is not None and seen[1] > 0:
            _cache_call(cache.delete, _slow_key(destination.pk))  # it answers again: no longer slow
    lost = [a.delivery.pk for a in attempts if a.delivery.pk not in moved]
    if lost:
        logger.warning("lease of %s was lost during the attempt; attempt recorded only", ", ".join(lost))


def _attempt_row(a: _Attempt, now: datetime) -> DeliveryAttempt:
    delivery, outcome = a.delivery, a.outcome
    return DeliveryAttempt(
        organization_id=delivery.organization_id,
        delivery_id=delivery.pk,
        event_id=delivery.event_id,
        destination_id=delivery.destination_id,
        connection_id=delivery.connection_id,
        attempt_number=a.attempt_number,
        status=AttemptStatus.SUCCESS if outcome.ok else AttemptStatus.FAILED,
        request_url=(outcome.request_url or "")[:2048],
        request_method=(outcome.request_method or "")[:32],
        request_headers=outcome.request_headers or {},
        request_body_size=outcome.request_body_size or 0,
        response_status=outcome.response_status,
        response_headers=outcome.response_headers or {},
        response_body=_truncate(outcome.response_body),
        duration_ms=a.duration_ms,
        error=outcome.error or "",
        trigger_type=a.trigger_type,
        created_at=now,
    )


@dataclass
class _Batch:
    claimed: int  # deliveries claimed
    more: bool  # due work probably remains (a full batch, or some put back at once)
    failed: bool  # an attempt failed slowly or as the breaker counts: the destination yields


def _batch(destination_id: str, ids: list[str] | None) -> _Batch:
    """Claim, gate, send and record one batch of the destination (the module docstring)."""
    destination = Destination.all_objects.select_related("circuit").filter(pk=destination_id).first()
    if destination is None:
        return _Batch(0, False, False)
    circuit_state = getattr(destination, "circuit", None)
    seen = (circuit_state.state, circuit_state.failure_count) if circuit_state else (CircuitStateValue.CLOSED, 0)
    cap, failing = _cap(destination, _failing_slowly_safe(destination, seen[1]))
    limit = _batch_size(destination, seen)
    if failing:
        limit = settings.HOOKSTREAM_BATCH_SIZE  # its excess is put back in one statement
    elif cap:
        limit = min(limit, cap)
    if ids is not None:
        limit = len(ids)
    now = timezone.now()
    timeout = destination.timeout_ms / 1000.0
    lease_seconds = max(settings.HOOKSTREAM_LEASE_SECONDS, timeout + 2 * LEASE_MARGIN_SECONDS)
    lease = now + timedelta(seconds=lease_seconds)
    deadline = time.monotonic() + lease_seconds - LEASE_MARGIN_SECONDS
    claimed = _claim_batch(destination_id, ids, now, lease, limit)
    if not claimed:
        return _Batch(0, False, False)
    deliveries = list(
        Delivery.objects.select_related("event", "event__topic").filter(pk__in=claimed).order_by(*CLAIM_ORDER)
    )
    for delivery in deliveries:
        delivery.destination = destination
    full = len(claimed) >= limit
    if destination.deleted_at is not None:
        _cancel(deliveries, lease, now)
        return _Batch(len(claimed), full, False)
    if destination.status != DestinationStatus.ACTIVE:
        _hold(deliveries, lease, now)
        return _Batch(len(claimed), full, False)
    deliveries = [d for d in deliveries if not d.transform_pending or _transform(d, lease, now)]

    going, seen = circuit.circuit_gate_batch(destination=destination, deliveries=deliveries, now=now)
    if len(going) < len(deliveries):
        kept = {d.pk for d in going}
        _hold([d for d in deliveries if d.pk not in kept], lease, now)
    if cap and going:
        going, waits = _over_cap(destination, going, now, cap, failing)
        _put_back(destination_id, waits, lease, now, coarse=failing)
    if destination.rate_limit_per_second and going:
        slots = [(d, _rate_slot_wait(destination, d.pk)) for d in going]
        going = [d for d, wait in slots if wait is None]
        _put_back(destination_id, [(d, wait) for d, wait in slots if wait is not None], lease, now)
    if not going:
        return _Batch(len(claimed), full, False)

    concurrency = 1
    if len(going) > 1 and _parallel(destination_id):
        concurrency = min(len(going), SEND_CONCURRENCY, cap or SEND_CONCURRENCY)
    attempts, unsent = _send_all(destination, going, concurrency=concurrency, deadline=deadline)
    _record_batch(destination, lease, attempts, seen)
    _put_back(destination_id, [(d, 0.0) for d in unsent], lease, timezone.now(), wake=False)
    # Failures that cost nothing (answered at once, the breaker off) keep their retry
    # schedule and do not shrink N; the others do, and make the task yield.
    failures = sum(1 for a in attempts if _stops_batch(destination, a))
    _pace_update(
        destination_id,
        latencies=[a.duration_ms / 1000.0 for a in attempts],
        failures=failures,
        concurrency=concurrency,
    )
    return _Batch(len(claimed), full or bool(unsent), failures > 0)


# --- the entry points ------------------------------------------------------------------------


def process_deliveries(destination_id: str, ids: list[str] | None = None) -> int:
    """Deliver the destination's due deliveries (or only ``ids``) in batches; returns how
    many were claimed. Safe to call any number of times, concurrently: racing callers claim
    disjoint rows, and one that finds nothing due does nothing.

    Woken by the broker (``ids`` None), it runs up to ``HOOKSTREAM_DESTINATION_BATCHES``
    batches (for at most :data:`TASK_SECONDS`), stopping early after a failure; when due work
    remains it wakes the destination again, behind the other destinations' wake-ups. While
    its first batch comes back full it wakes a helper, up to :data:`DESTINATION_RUNNERS`.
    """
    if ids is not None:
        return _batch(destination_id, list(ids)).claimed if ids else 0
    destination_wake_taken(destination_id)  # before claiming: a later wake-up is a new message
    runners = _runner_enter(destination_id)
    started = time.monotonic()
    claimed, more = 0, False
    try:
        for number in range(settings.HOOKSTREAM_DESTINATION_BATCHES):
            batch = _batch(destination_id, None)
            claimed += batch.claimed
            more = batch.more
            if number == 0 and more and runners < DESTINATION_RUNNERS:
                _wake(destination_id)
            if not more or batch.failed or time.monotonic() - started > TASK_SECONDS:
                break
    finally:
        _runner_exit(destination_id)
    if more:
        _wake(destination_id)
    return claimed


def _wake(destination_id: str) -> None:
    try:
        destination_wake(destination_id)
    except Exception:  # broker down: beat wakes the due deliveries
        logger.warning("could not wake destination %s; beat will wake it", destination_id)


def process_delivery(delivery_id: str) -> None:
    """Attempt delivery ``delivery_id`` once if it is due (a batch of one)."""
    destination_id = Delivery.objects.filter(pk=delivery_id).values_list("destination_id", flat=True).first()
    if destination_id is not None:
        process_deliveries(destination_id, ids=[delivery_id])
