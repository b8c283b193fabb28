"""Small factories for tests: rows with sensible defaults, created directly."""

import json

from django.utils import timezone

from deliveries.models import (
    AttemptStatus,
    DeadLetter,
    DeadLetterReason,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ReplayJob,
)
from destinations.models import CircuitState, Destination
from hookstream import services
from intake.models import Connection, Event, Source, Subscription, Topic
from monitoring.models import AlertRule, Issue, NotificationChannel

_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


def make_destination(org, **fields) -> Destination:
    n = _next()
    defaults = {"name": f"Destination {n}", "slug": f"destination-{n}", "type": "http", "url": "http://127.0.0.1:9/"}
    defaults.update(fields)
    destination = Destination.objects.create(organization=org, **defaults)
    CircuitState.objects.get_or_create(destination=destination)
    return destination


def make_source(org, **fields) -> Source:
    n = _next()
    defaults = {"name": f"Source {n}", "slug": f"source-{n}"}
    defaults.update(fields)
    return Source.objects.create(organization=org, **defaults)


def make_event(org, payload=None, *, source=None, body: bytes | None = None, **fields) -> Event:
    if body is None:
        payload = {"type": "order.created", "id": _next()} if payload is None else payload
        body = json.dumps(payload).encode()
    return Event.objects.create(
        organization=org,
        source=source,
        body=body,
        payload=payload,
        body_size=len(body),
        content_type=fields.pop("content_type", "application/json"),
        **fields,
    )


def make_delivery(event, destination, **fields) -> Delivery:
    return Delivery.objects.create(organization=event.organization, event=event, destination=destination, **fields)


def make_one_of_everything(org) -> dict:
    """One row of every org-owned resource that has an API route, keyed by kind."""
    source = make_source(org)
    destination = make_destination(org, url="https://hooks.example.com/in")
    connection = Connection.objects.create(organization=org, source=source, destination=destination)
    topic = Topic.objects.create(organization=org, name="Orders", slug="orders")
    subscription = Subscription.objects.create(organization=org, topic=topic, destination=destination)
    event = make_event(org, source=source)
    # It died after one failed attempt: dead, with its dead letter (DeliveryStatus has no "failed").
    delivery = make_delivery(
        event, destination, status=DeliveryStatus.DEAD, attempt_count=1, completed_at=timezone.now()
    )
    attempt = DeliveryAttempt.objects.create(
        organization=org,
        delivery=delivery,
        event=event,
        destination=destination,
        connection=connection,
        attempt_number=1,
        status=AttemptStatus.FAILED,
        response_status=500,
    )
    DeadLetter.objects.create(
        organization=org,
        delivery=delivery,
        destination=destination,
        event=event,
        reason=DeadLetterReason.RETRIES_EXHAUSTED,
    )
    replay_job = ReplayJob.objects.create(organization=org, destination=destination, source=source)

    issue = Issue.objects.create(organization=org, destination=destination, error_type="http_5xx", message="HTTP 500")
    channel = NotificationChannel.objects.create(
        organization=org, name="Ops mail", channel_type="email", config={"to": ["ops@example.com"]}
    )
    alert_rule = AlertRule.objects.create(organization=org, name="New issues", rule_type="issue_opened")
    api_key, _ = services.api_key_create(organization=org, name="spare key")
    return {
        "api_key": api_key,
        "destination": destination,
        "source": source,
        "connection": connection,
        "topic": topic,
        "subscription": subscription,
        "event": event,
        "attempt": attempt,
        "replay_job": replay_job,
        "issue": issue,
        "notification_channel": channel,
        "alert_rule": alert_rule,
    }
