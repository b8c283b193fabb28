"""What several provider suites check the same way."""

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter
from tests.factories import make_delivery, make_event


def assert_unreachable_is_retried_then_dead_lettered(org, destination) -> None:
    """With one retry allowed, a target that refuses connections is retried, then dead-lettered.

    ``destination`` must have ``retry_max_attempts=1`` and ``retry_intervals=[0]``."""
    delivery = make_delivery(make_event(org, {"type": "order.created"}), destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "scheduled"
    assert "connection error" in delivery.last_error
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    assert DeadLetter.objects.get(delivery=delivery).reason == "retries_exhausted"
