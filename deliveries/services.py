"""Writes for deliveries. The delivery engine lives here and in ``deliveries.tasks``."""

from django.db import transaction


def deliveries_enqueue_on_commit(delivery_ids: list[str]) -> None:
    """Wake a worker for each delivery once the surrounding transaction commits."""
    if not delivery_ids:
        return

    def _send():
        from deliveries.tasks import deliver

        for delivery_id in delivery_ids:
            deliver.delay(delivery_id)

    transaction.on_commit(_send)
