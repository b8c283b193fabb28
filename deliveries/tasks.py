"""Celery tasks: thin wrappers that take ids and call the engine or a service.

Nothing imports this module: work is sent by task name through ``deliveries.dispatch``,
and Celery's autodiscovery registers the tasks in the worker.
"""

from celery import shared_task

from deliveries import counters, dispatch, retention
from deliveries.beat import beat_run
from deliveries.engine import process_deliveries, process_delivery
from deliveries.services import replay_job_run


@shared_task(name=dispatch.DELIVER_DESTINATION, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_destination(destination_id: str) -> None:
    """Deliver a destination's due deliveries in batches (``deliveries.engine.process_deliveries``)."""
    process_deliveries(destination_id)


@shared_task(name=dispatch.DELIVER, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(delivery_id: str) -> None:
    """Attempt one delivery if it is due (``deliveries.engine.process_delivery``): the wake-ups
    of one delivery that brokers carried before wake-ups were per destination."""
    process_delivery(delivery_id)


@shared_task(name=dispatch.BEAT_TICK, ignore_result=True, expires=30)
def beat_tick() -> None:
    """Wake due deliveries, reclaim expired leases, move circuits (``deliveries.beat``)."""
    beat_run()


@shared_task(name=dispatch.REPLAY_RUN, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def replay_run(job_id: str) -> None:
    """Run a replay or dead-letter-retry job (resumable: it skips what it already did)."""
    replay_job_run(job_id=job_id)


@shared_task(name=dispatch.PURGE_OLD_EVENTS, ignore_result=True)
def purge_old_events() -> dict | None:
    """Beat: apply HOOKSTREAM_RETENTION_DAYS (``deliveries.retention``)."""
    return retention.purge_old_events()


@shared_task(name=dispatch.FOLD_DELIVERY_COUNTS, ignore_result=True, expires=60)
def fold_delivery_counts() -> int:
    """Beat: keep the count rows few (one per destination, plus what came since)."""
    return counters.delivery_counts_fold()
