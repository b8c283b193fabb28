"""Which routes an event takes: the routes' filter rules decide.

Pure: no database, no broker. ``deliveries.fanout`` stores the event, asks this module, and
creates one delivery per match. Filter rules are cheap and linear, so they run here, in the
ingest request; a route's transform is tenant code and never does: the match only says that
one is owed, and the worker applies it in the sandbox (``deliveries.engine``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from intake import filters
from intake.models import Connection, Event, Subscription


@dataclass(frozen=True)
class RouteMatch:
    """A route whose filter rules matched the event."""

    destination_id: str
    connection_id: str | None = None
    subscription_id: str | None = None
    # The route has a transform, applied by the worker before the first attempt.
    transform_pending: bool = False


def routes_match(*, event: Event, routes: Iterable[Connection | Subscription]) -> list[RouteMatch]:
    """The routes (connections of a source, or subscriptions of a topic) ``event`` takes, in
    order."""
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
        is_connection = isinstance(route, Connection)
        matches.append(
            RouteMatch(
                destination_id=route.destination_id,
                connection_id=route.pk if is_connection else None,
                subscription_id=None if is_connection else route.pk,
                transform_pending=bool(route.transform_expression),
            )
        )
    return matches
