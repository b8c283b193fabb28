from celery import shared_task


@shared_task(name="deliveries.deliver", acks_late=True, reject_on_worker_lost=True)
def deliver(delivery_id: str) -> None:
    """Attempt one delivery (the engine fills this in)."""
    raise NotImplementedError
