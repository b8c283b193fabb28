"""Celery tasks: thin wrappers that take ids and call the engine or a service."""

from celery import shared_task


@shared_task(name="deliveries.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(delivery_id: str) -> None:
    """Attempt one delivery if it is due (``deliveries.engine.process_delivery``)."""
    from deliveries.engine import process_delivery

    process_delivery(delivery_id)


@shared_task(name="deliveries.beat_tick", ignore_result=True, expires=30)
def beat_tick() -> None:
    """Wake due deliveries, reclaim expired leases, move circuits (``deliveries.beat``)."""
    from deliveries.beat import beat_run

    beat_run()


@shared_task(name="deliveries.replay_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def replay_run(job_id: str) -> None:
    """Run a replay or dead-letter-retry job (resumable: it skips what it already did)."""
    from deliveries.services import replay_job_run

    replay_job_run(job_id=job_id)


from deliveries.counters import fold_delivery_counts  # noqa: E402, F401  (registers the beat task)
from deliveries.retention import purge_old_events  # noqa: E402, F401  (registers the beat task)
