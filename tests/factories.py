"""Small factories for tests: rows with sensible defaults, created directly."""

import json

from deliveries.models import Delivery
from destinations.models import CircuitState, Destination
from intake.models import Event, Source

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
