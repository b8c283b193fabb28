"""The broker: the only module that sends Celery tasks, and the owner of the queue names.

Tasks are sent by name (``deliveries.tasks`` registers them; nothing imports it), once the
surrounding transaction commits: a worker must never wake up before the row it is woken
for is visible. The database is the truth about every delivery and the broker only carries
wake-ups: when the broker is unreachable a wake-up is lost, never a delivery, because beat
wakes every due delivery from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import current_app
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
DELIVER = "deliveries.deliver"
BEAT_TICK = "deliveries.beat_tick"
REPLAY_RUN = "deliveries.replay_run"
PURGE_OLD_EVENTS = "deliveries.purge_old_events"
FOLD_DELIVERY_COUNTS = "deliveries.fold_delivery_counts"


def delivery_wake(delivery_id: str) -> None:
    """Send one wake-up for ``delivery_id`` now (the caller has committed its row)."""
    current_app.send_task(DELIVER, args=(delivery_id,))


def delivery_wake_later(delivery_id: str, countdown: float) -> None:
    """Wake ``delivery_id`` after ``countdown`` seconds, on the timed queue."""
    current_app.send_task(DELIVER, args=(delivery_id,), countdown=countdown, queue=TIMED_QUEUE)


def deliveries_enqueue_on_commit(delivery_ids: Iterable[str]) -> None:
    """Wake a worker for each delivery once the surrounding transaction commits.

    Outside a transaction ``on_commit`` runs at once. If the broker is unreachable the
    remaining wake-ups are dropped with one warning: beat wakes them from the database.
    """
    ids = list(delivery_ids)
    if not ids:
        return

    def send() -> None:
        for delivery_id in ids:
            try:
                delivery_wake(delivery_id)
            except Exception:  # broker down: beat will wake it
                logger.warning("could not enqueue %s; beat will wake it", delivery_id)
                return

    transaction.on_commit(send)


def delivery_wake_later_on_commit(delivery_id: str, countdown: float) -> None:
    """:func:`delivery_wake_later` once the surrounding transaction commits."""
    transaction.on_commit(lambda: delivery_wake_later(delivery_id, countdown))


def replay_job_start_on_commit(job_id: str) -> None:
    """Start a replay or dead-letter-retry job on a worker once the transaction commits."""
    transaction.on_commit(lambda: current_app.send_task(REPLAY_RUN, args=(job_id,)))
