"""Which routes an event takes: the routes' filters decide, their transforms shape the body.

Pure: no database, no broker. ``deliveries.fanout`` stores the event, asks this module, and
creates one delivery per match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from intake import filters, transforms
from intake.models import Connection, Event, Subscription


@dataclass(frozen=True)
class RouteMatch:
    """A route whose filter rules matched the event."""

    destination_id: str
    connection_id: str | None = None
    subscription_id: str | None = None
    # The body after the route's transform; None when it has none (the event body is sent).
    transformed_payload: Any = None
    # Why the transform failed (the delivery cannot be sent), or None.
    transform_error: str | None = None


def routes_match(*, event: Event, routes: Iterable[Connection | Subscription]) -> list[RouteMatch]:
    """The routes (connections of a source, or subscriptions of a topic) ``event`` takes, in
    order, with their transforms applied. A transform that fails is reported on its match,
    not raised: the other routes still get the event."""
    routes = list(routes)
    if not routes:
        return []
    context = filters.event_context(
        payload=event.payload,
        headers=event.headers,
        method=event.method,
        content_type=event.content_type,
        source_ip=event.source_ip,
    )
    matches = []
    for route in routes:
        if not filters.rules_match(route.filter_rules, context):
            continue
        transformed, error = None, None
        if route.transform_expression:
            try:
                transformed = transforms.transform_apply(route.transform_expression, event.payload)
            except transforms.TransformError as exc:
                error = str(exc)
        is_connection = isinstance(route, Connection)
        matches.append(
            RouteMatch(
                destination_id=route.destination_id,
                connection_id=route.pk if is_connection else None,
                subscription_id=None if is_connection else route.pk,
                transformed_payload=transformed,
                transform_error=error,
            )
        )
    return matches
