"""Reads of intake: the source and routes an ingest request needs, a topic and its routes.

Events with their status (derived from their deliveries) are ``deliveries.selectors``'.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import BooleanField, Count, F, Func, Q, QuerySet
from django.http import Http404

from destinations.models import Destination, DestinationStatus
from hookstream import versions
from intake.models import Connection, Event, Source, Subscription, Topic

ROUTE_FIELDS = ("id", "destination_id", "filter_rules", "transform_expression")


def _live_connections(**source):
    return Connection.objects.filter(
        enabled=True,
        destination__deleted_at__isnull=True,
        destination__status=DestinationStatus.ACTIVE,
        **source,
    )


def source_routes(*, source: Source) -> list[Connection]:
    """The enabled connections of ``source`` whose destination is active and not deleted."""
    return list(_live_connections(source_id=source.pk).only(*ROUTE_FIELDS))


@cache
def _source_with_routes_sql() -> str:
    """One statement: the source row and a JSON array of its live routes (PostgreSQL).

    Written out rather than built with the ORM on every request: compiling the equivalent
    ArraySubquery/JSONObject queryset costs more than the round trip it saves.
    """
    source = Source._meta.db_table
    conn = Connection._meta.db_table
    destination = Destination._meta.db_table
    route = ", ".join(f"'{name}', c.{name}" for name in ROUTE_FIELDS)
    return (
        f"SELECT s.*, (SELECT COALESCE(json_agg(json_build_object({route})), '[]'::json) "
        f"FROM {conn} c JOIN {destination} d ON d.id = c.destination_id "
        f"WHERE c.source_id = s.id AND c.enabled AND d.deleted_at IS NULL AND d.status = %s) AS route_rows "
        f"FROM {source} s WHERE s.id = %s"
    )


def _source_read(source_id: str) -> tuple[Source | None, list[Connection]]:
    """The source and its live routes from the database: one statement on PostgreSQL (the
    routes come along as a JSON array), two elsewhere."""
    if connection.vendor != "postgresql":
        source = Source.objects.filter(pk=source_id).first()
        return source, (source_routes(source=source) if source is not None else [])
    found = list(Source.objects.raw(_source_with_routes_sql(), [DestinationStatus.ACTIVE.value, source_id]))
    if not found:
        return None, []
    source = found[0]
    routes = [
        Connection(source_id=source.pk, organization_id=source.organization_id, **row) for row in source.route_rows
    ]
    return source, routes


@dataclass(frozen=True)
class _Held:
    """A source and its routes as read under the routing token ``token`` at ``read_at``."""

    organization_id: str
    token: bytes | str | None
    read_at: float
    source: Source | None = None
    routes: tuple[Connection, ...] = ()


# Per process: source id -> what was last read of it. Shared by the threads of a worker and
# never mutated in place (an entry is replaced whole), so no lock is needed.
_held: dict[str, _Held] = {}
HELD_MAX = 10_000


def source_for_ingest(*, source_id: str) -> tuple[Source | None, list[Connection]]:
    """The source of an ingest request and its live routes (``source_routes``).

    Kept in the process and read again only when the organization's routing token
    (``hookstream.versions``) has moved since, or after ``versions.MAX_AGE_SECONDS``: a
    request to a known source costs one Redis GET instead of a query, and a change saved by
    any process is seen by the next request (``intake.receivers`` bumps the token).

    1. An unknown source is read without being kept, only its organization remembered:
       its token is to be read *before* the database (``hookstream.versions``, rule 1).
    2. A known one: read the token; the same token and a young copy answer from memory.
    3. Otherwise read the database and keep the result under the token read in step 2
       (nothing is kept when there is no token to read: no Redis, or it fails).

    The objects returned are shared by every request of the process: read them, never
    change them.
    """
    held = _held.get(source_id)
    if held is None:
        source, routes = _source_read(source_id)
        if source is not None:
            if len(_held) >= HELD_MAX:
                _held.clear()
            _held[source_id] = _Held(organization_id=source.organization_id, token=None, read_at=0.0)
        return source, routes
    token = versions.current(versions.routes_scope(held.organization_id))
    now = time.monotonic()
    if token is not None and token == held.token and now - held.read_at < versions.MAX_AGE_SECONDS:
        return held.source, list(held.routes)
    source, routes = _source_read(source_id)
    if source is None:
        _held.pop(source_id, None)
        return None, []
    _held[source_id] = _Held(
        organization_id=source.organization_id, token=token, read_at=now, source=source, routes=tuple(routes)
    )
    return source, routes


def topic_for_publish(*, organization, slug_or_id: str) -> Topic:
    topics = Topic.objects.filter(organization=organization)
    topic = topics.filter(pk=slug_or_id).first() if slug_or_id.startswith("top_") else None
    topic = topic or topics.filter(slug=slug_or_id).first()
    if topic is None:
        raise Http404("No such topic.")
    return topic


def topic_routes(*, topic: Topic) -> list[Subscription]:
    """The subscriptions of ``topic`` whose destination is active and not deleted."""
    return list(
        Subscription.objects.filter(
            topic=topic, destination__deleted_at__isnull=True, destination__status=DestinationStatus.ACTIVE
        ).only(*ROUTE_FIELDS)
    )


# --- pages of the console ----------------------------------------------------------------------


def sources_for_organization(*, organization) -> QuerySet[Source]:
    """The organization's sources, each annotated with ``connection_count``."""
    return Source.objects.filter(organization=organization).annotate(connection_count=Count("connections"))


def source_get(*, organization, source_id: str) -> Source:
    """One source of ``organization``; 404 for anything else (another organization's id too)."""
    source = Source.objects.filter(organization=organization, pk=source_id).first()
    if source is None:
        raise Http404("No such source.")
    return source


def source_choices(*, organization) -> list[tuple[str, str]]:
    """``[(id, name)]`` of the organization's sources, by name."""
    return list(Source.objects.filter(organization=organization).order_by("name", "id").values_list("id", "name"))


def source_connections(*, source: Source) -> QuerySet[Connection]:
    """The source's connections with their destination, oldest first."""
    return source.connections.select_related("destination").order_by("created_at", "id")


def connections_for_organization(*, organization, source_id: str | None = None) -> QuerySet[Connection]:
    """The organization's connections with source and destination (of one source if given)."""
    connections = Connection.objects.filter(organization=organization).select_related("source", "destination")
    if source_id:
        connections = connections.filter(source_id=source_id)
    return connections


def connection_get(*, organization, connection_id: str) -> Connection:
    """One connection of ``organization`` with source and destination; 404 otherwise."""
    connection = connections_for_organization(organization=organization).filter(pk=connection_id).first()
    if connection is None:
        raise Http404("No such connection.")
    return connection


def topics_for_organization(*, organization) -> QuerySet[Topic]:
    """The organization's topics, each annotated with ``subscription_count``."""
    return Topic.objects.filter(organization=organization).annotate(subscription_count=Count("subscriptions"))


def topic_get(*, organization, topic_id: str) -> Topic:
    """One topic of ``organization``; 404 for anything else (another organization's id too)."""
    topic = Topic.objects.filter(organization=organization, pk=topic_id).first()
    if topic is None:
        raise Http404("No such topic.")
    return topic


def topic_subscriptions(*, topic: Topic) -> QuerySet[Subscription]:
    """The topic's subscriptions with their destination, oldest first."""
    return topic.subscriptions.select_related("destination").order_by("created_at", "id")


def subscription_get(*, topic: Topic, subscription_id: str) -> Subscription:
    """One subscription of ``topic``; 404 otherwise."""
    subscription = (
        Subscription.objects.filter(topic=topic, pk=subscription_id).select_related("topic", "destination").first()
    )
    if subscription is None:
        raise Http404("No such subscription.")
    return subscription


def recent_events(*, organization, source_id: str = "", topic_id: str = "", limit: int = 20) -> list[Event]:
    """The newest events of ``organization`` (of one source or topic when given), without
    their raw bodies: what the route tester offers."""
    events = Event.objects.filter(organization=organization)
    if source_id:
        events = events.filter(source_id=source_id)
    if topic_id:
        events = events.filter(topic_id=topic_id)
    events = (
        events.select_related("source", "topic").defer("body", "headers", "query").order_by("-created_at", "-id")
    )
    return list(events[:limit])


def event_for_routes(*, organization, event_id: str) -> Event:
    """One event of ``organization`` with what filter rules and transforms read (payload,
    headers, method, content type, client address); 404 for anything else."""
    event = (
        Event.objects.filter(organization=organization, pk=event_id)
        .only("id", "payload", "headers", "method", "content_type", "source_ip", "source_id", "topic_id")
        .first()
    )
    if event is None:
        raise Http404("No such event.")
    return event


def event_get(*, organization, event_id: str) -> Event:
    """One event of ``organization``, its id only (enough to act on it); 404 otherwise."""
    event = Event.objects.only("id").filter(organization=organization, pk=event_id).first()
    if event is None:
        raise Http404("No such event.")
    return event


# Below this many characters a body search is not run: a trigram index cannot narrow it,
# so it would read every body of the organization.
SEARCH_MIN_BODY_CHARS = 3


class BodyContains(Func):
    """``body`` (bytes) contains ``needle``, case-insensitively.

    On PostgreSQL the body is seen through ``encode(body, 'escape')`` — bytes as themselves,
    except NUL and bytes over 0x7F as ``\\ooo`` and a backslash doubled — which is what the
    trigram index of migration ``intake.0005`` covers (``event_body_trgm``), so a search stays
    fast at a million events. The needle is escaped the same way, so a non-ASCII needle
    matches its UTF-8 bytes.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, needle: str):
        super().__init__(F("body"))
        self.needle = needle

    @staticmethod
    def _escaped(needle: str) -> str:
        out = []
        for byte in needle.encode():
            if byte == 0x5C:
                out.append("\\\\")
            elif byte == 0 or byte >= 0x80:
                out.append(f"\\{byte:03o}")
            else:
                out.append(chr(byte))
        return "".join(out)

    def as_sql(self, compiler, connection, **extra):
        body, params = compiler.compile(self.source_expressions[0])
        pattern = self._escaped(self.needle) if connection.vendor == "postgresql" else self.needle
        pattern = "%" + pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if connection.vendor == "postgresql":
            return f"encode({body}, 'escape') ILIKE %s", [*params, pattern]
        return f"CAST({body} AS TEXT) LIKE %s ESCAPE '\\'", [*params, pattern]


def events_search(queryset: QuerySet[Event], term: str) -> QuerySet[Event]:
    """Events whose id or idempotency key is ``term``, or whose body contains it."""
    condition = Q(pk=term) | Q(idempotency_key=term)
    if len(term) >= SEARCH_MIN_BODY_CHARS:
        condition |= Q(BodyContains(term))
    return queryset.filter(condition)
