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


def held_deliveries_release(*, destination) -> int:
    """Make a destination's held deliveries due again (after a circuit reset or resume).

    Returns how many were released. The engine drains them oldest first.
    """
    from django.utils import timezone

    from deliveries.models import Delivery, DeliveryStatus

    ids = list(
        Delivery.objects.filter(destination=destination, status=DeliveryStatus.HELD)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    if ids:
        Delivery.objects.filter(id__in=ids, status=DeliveryStatus.HELD).update(
            status=DeliveryStatus.PENDING, next_attempt_at=timezone.now()
        )
        deliveries_enqueue_on_commit(ids)
    return len(ids)


def deliveries_cancel_for_destination(*, destination) -> int:
    """Cancel every delivery of a deleted destination that has not finished."""
    from django.utils import timezone

    from deliveries.models import Delivery, DeliveryStatus

    return Delivery.objects.filter(
        destination=destination,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD],
    ).update(status=DeliveryStatus.CANCELLED, completed_at=timezone.now())
