"""What the provider suites share: making a destination of a type, delivering one event to
it, reading its attempt, and the checks several suites make the same way."""

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, DeliveryAttempt
from destinations.providers import get_provider
from destinations.signing import SECRET_FIELDS as SIGNING_SECRET_FIELDS
from hookstream import crypto
from tests.factories import make_delivery, make_destination, make_event


def provider_destination(org, type_: str, config: dict, *, url: str = "", signing_config=None, **fields):
    """A destination of ``type_`` whose ``config`` passed the provider's validation, with its
    secrets encrypted as the API stores them."""
    provider = get_provider(type_)
    cleaned = provider.validate_config(config, url=url)
    signing = crypto.encrypt_fields(signing_config, SIGNING_SECRET_FIELDS) if signing_config else None
    return make_destination(
        org,
        type=type_,
        url=url,
        provider_config=crypto.encrypt_fields(cleaned, provider.secret_fields()),
        signing_config=signing,
        **fields,
    )


def deliver(org, destination, payload=None, **event_fields):
    """Store an event (``payload``, or a small order event), make its delivery to
    ``destination`` and run one attempt; returns ``(event, delivery)`` refreshed."""
    event = make_event(org, payload, **event_fields)
    delivery = make_delivery(event, destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    return event, delivery


def only_attempt(delivery) -> DeliveryAttempt:
    attempts = list(DeliveryAttempt.objects.filter(delivery_id=delivery.pk).order_by("attempt_number"))
    assert len(attempts) == 1
    return attempts[0]


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
