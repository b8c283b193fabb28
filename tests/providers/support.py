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


def assert_retried_by_policy_then_dead_lettered(org, destination, fragment: str, payload=None):
    """Every attempt fails with ``fragment`` in its error; the delivery is retried exactly
    ``retry_max_attempts`` times, then dead-lettered with ``retries_exhausted``.

    ``destination`` must have ``retry_intervals=[0]`` (each retry is due at once). Returns
    the delivery's attempts, in order."""
    delivery = make_delivery(make_event(org, payload or {"type": "order.created"}), destination)
    tries = destination.retry_max_attempts + 1
    for number in range(1, tries + 1):
        process_delivery(delivery.id)
        delivery.refresh_from_db()
        assert delivery.status == ("dead" if number == tries else "scheduled"), (number, delivery.last_error)
    attempts = list(DeliveryAttempt.objects.filter(delivery_id=delivery.pk).order_by("attempt_number"))
    assert [a.attempt_number for a in attempts] == list(range(1, tries + 1))
    for attempt in attempts:
        assert attempt.status == "failed" and fragment in attempt.error, attempt.error
    assert [a.is_dlq for a in attempts] == [False] * (tries - 1) + [True]
    assert DeadLetter.objects.get(delivery=delivery).reason == "retries_exhausted"
    return attempts
