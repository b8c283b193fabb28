"""The broker: the only module that sends Celery tasks, and the owner of the queue names.

Tasks are sent by name (``deliveries.tasks`` registers them; nothing imports it), once the
surrounding transaction commits: a worker must never wake up before the row it is woken
for is visible. The database is the truth about every delivery and the broker only carries
wake-ups: when the broker is unreachable a wake-up is lost, never a delivery, because beat
wakes every due delivery from the database.

Wake-ups are per destination ("destination D has due work"), not per delivery: the task
``deliveries.deliver_destination`` claims the destination's due deliveries in batches. A
burst of events for one destination sends a handful of messages, because a wake-up is
de-duplicated in the cache (``hs:wake:<destination id>``, for
``HOOKSTREAM_WAKE_DEDUP_SECONDS``): while one is waiting in the queue another adds nothing.
The task releases the key as it takes its wake-up (:func:`destination_wake_taken`), before
it claims anything, so a wake-up sent while a batch is running is a new message, never lost.
When the cache is unreachable, wake-ups are sent anyway.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

# The default queue: new deliveries, beat's wake-ups, jobs (Celery's default name).
DEFAULT_QUEUE = "celery"
# Timed wake-ups (retry countdowns, put-backs) travel on their own queue, which the workers
# consume alongside the default one (``hookstream.celery``). On one queue they would wait
# behind every message already in it: after a burst of new events, a retry due in one
# second was fetched only when the whole backlog had been — many seconds late.
TIMED_QUEUE = "deliveries.timed"
QUEUES = (DEFAULT_QUEUE, TIMED_QUEUE)

# Task names (``deliveries.tasks``).
DELIVER_DESTINATION = "deliveries.deliver_destination"
# One delivery by id: what brokers carried before wake-ups were per destination (messages
# still queued during an upgrade are processed by it).
DELIVER = "deliveries.deliver"
BEAT_TICK = "deliveries.beat_tick"
REPLAY_RUN = "deliveries.replay_run"
PURGE_OLD_EVENTS = "deliveries.purge_old_events"
FOLD_DELIVERY_COUNTS = "deliveries.fold_delivery_counts"

# Timed wake-ups are rounded up to this step of the clock: retries of a destination due within
# the same twentieth of a second share one message (the task claims everything due when it runs).
TIMED_WAKE_STEP_SECONDS = 0.05


def _wake_key(destination_id: str) -> str:
    return f"hs:wake:{destination_id}"


def destination_wake(destination_id: str, *, force: bool = False) -> bool:
    """Wake a worker for ``destination_id`` now, unless a wake-up is already waiting.

    ``force`` sends one even then (beat, whose wake-ups replace lost ones). Returns whether a
    message was sent. The caller has committed the rows it wakes for.
    """
    ttl = settings.HOOKSTREAM_WAKE_DEDUP_SECONDS
    if ttl > 0:
        try:
            added = cache.add(_wake_key(destination_id), 1, ttl)
        except Exception:  # no cache: send it, a duplicate wake-up costs one claim
            added = True
        if not added and not force:
            return False
        if not added:
            _cache_set(destination_id, ttl)
    try:
        current_app.send_task(DELIVER_DESTINATION, args=(destination_id,))
    except Exception:
        destination_wake_taken(destination_id)  # no message waits: the next wake-up must be sent
        raise
    return True


def _cache_set(destination_id: str, ttl: float) -> None:
    try:
        cache.set(_wake_key(destination_id), 1, ttl)
    except Exception:
        pass


def destination_wake_taken(destination_id: str) -> None:
    """The task took its wake-up: the next one sent must be a new message."""
    try:
        cache.delete(_wake_key(destination_id))
    except Exception:
        logger.warning("cache unavailable: wake-up key of %s not released", destination_id)


def destination_wake_later(destination_id: str, countdown: float) -> None:
    """Wake ``destination_id`` after ``countdown`` seconds, on the timed queue.

    The moment is rounded up to :data:`TIMED_WAKE_STEP_SECONDS` of the clock, and one message
    is sent per destination and step (de-duplicated in the cache, across workers): every delivery
    that comes due by then is claimed by that one task. Without a cache each is sent.
    """
    _wake_at(destination_id, _slot(time.time() + countdown))


def _slot(moment: float, step: float = TIMED_WAKE_STEP_SECONDS) -> int:
    return math.ceil(moment / step)


def _wake_at(destination_id: str, slot: int, step: float = TIMED_WAKE_STEP_SECONDS) -> None:
    now = time.time()
    countdown = max(slot * step - now, 0.0)
    try:
        first = cache.add(f"hs:wake-at:{destination_id}:{step}:{slot}", 1, int(countdown) + 60)
    except Exception:
        first = True
    if first:
        current_app.send_task(DELIVER_DESTINATION, args=(destination_id,), countdown=countdown, queue=TIMED_QUEUE)


def destinations_wake_on_commit(destination_ids: Iterable[str], *, force: bool = False) -> None:
    """Wake a worker for each destination once the surrounding transaction commits.

    Outside a transaction ``on_commit`` runs at once. If the broker is unreachable the
    remaining wake-ups are dropped with one warning: beat wakes them from the database.
    """
    ids = list(dict.fromkeys(destination_ids))
    if not ids:
        return

    def send() -> None:
        for destination_id in ids:
            try:
                destination_wake(destination_id, force=force)
            except Exception:  # broker down: beat will wake it
                logger.warning("could not wake destination %s; beat will wake it", destination_id)
                return

    transaction.on_commit(send)


def destination_wake_at_on_commit(
    destination_id: str, moments: Iterable[datetime], *, step: float = TIMED_WAKE_STEP_SECONDS
) -> None:
    """Timed wake-ups of ``destination_id`` at each of ``moments`` (when work comes due), sent
    once the surrounding transaction commits: one message per ``step`` of the clock (a
    coarser step for work whose exact moment does not matter). The moments are absolute, so
    whatever runs between the commit and the sending does not delay them."""
    slots = sorted({_slot(moment.timestamp(), step) for moment in moments})
    if not slots:
        return

    def send() -> None:
        try:
            for slot in slots:
                _wake_at(destination_id, slot, step)
        except Exception:
            logger.warning("could not send timed wake-ups of %s; beat will wake them", destination_id)

    transaction.on_commit(send)


def replay_job_start_on_commit(job_id: str) -> None:
    """Start a replay or dead-letter-retry job on a worker once the transaction commits."""
    transaction.on_commit(lambda: current_app.send_task(REPLAY_RUN, args=(job_id,)))
