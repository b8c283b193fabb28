"""Reads of intake: the source and routes an ingest request needs, events with their status."""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.db.models import BooleanField, Case, CharField, Count, F, Func, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Least
from django.db.models.lookups import GreaterThan
from django.http import Http404

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus
from destinations.models import Destination, DestinationStatus
from intake.models import Connection, Event, Source, Topic


class EventStatus:
    """An event's status, derived from its deliveries (cancelled ones are not counted).

    - ``pending``: at least one delivery is still on its way (pending, in flight, waiting for
      a retry, or held by a circuit or a paused destination);
    - ``delivered``: every delivery succeeded;
    - ``failed``: none succeeded, and every one is dead;
    - ``partially_delivered``: some succeeded, some are dead;
    - ``no_deliveries``: nothing was routed (no connection, or every filter said no).
    """

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    PARTIALLY_DELIVERED = "partially_delivered"
    NO_DELIVERIES = "no_deliveries"
    ALL = (PENDING, DELIVERED, FAILED, PARTIALLY_DELIVERED, NO_DELIVERIES)


OPEN_STATUSES = [DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD]


# The status filters, over the ``status`` annotation of ``events_for_organization``.
STATUS_CONDITIONS = {name: Q(status=name) for name in EventStatus.ALL}
# A pending event has an unfinished delivery, and unfinished deliveries are few (those on
# their way now): the filter starts from them (a semi-join on the ``delivery_event_unfinished``
# partial index). Without it, a filter that matches little computes the status of every event
# of the organization to find out (1.5 s at 300,000 events with none pending; 45 ms with it).
# Dead deliveries accumulate, so the failed filters keep the plain scan in list order.
STATUS_CONDITIONS[EventStatus.PENDING] &= Q(pk__in=Delivery.objects.filter(status__in=OPEN_STATUSES).values("event_id"))


def _status_from_deliveries() -> Subquery:
    """An event's status as one correlated subquery over its deliveries (cancelled ones not
    counted): conditional counts, then the rules of ``EventStatus``.

    Not three EXISTS: PostgreSQL may turn an EXISTS in the select list into a hashed subplan
    that reads every delivery of every organization to answer one page (a sequential scan
    per EXISTS, seconds at a million deliveries). An aggregate subquery cannot be hashed, so
    each event of the page costs one probe of the ``delivery_event`` index.
    """
    in_status = {
        name: Count("pk", filter=Q(status__in=statuses))
        for name, statuses in (
            ("open", OPEN_STATUSES),
            ("succeeded", [DeliveryStatus.SUCCEEDED]),
            ("dead", [DeliveryStatus.DEAD]),
        )
    }
    status = Case(
        When(GreaterThan(in_status["open"], 0), then=Value(EventStatus.PENDING)),
        When(
            GreaterThan(Least(in_status["succeeded"], in_status["dead"]), 0),
            then=Value(EventStatus.PARTIALLY_DELIVERED),
        ),
        When(GreaterThan(in_status["succeeded"], 0), then=Value(EventStatus.DELIVERED)),
        When(GreaterThan(in_status["dead"], 0), then=Value(EventStatus.FAILED)),
        default=Value(EventStatus.NO_DELIVERIES),
        output_field=CharField(),
    )
    per_event = (
        Delivery.objects.filter(event=OuterRef("pk"))
        .exclude(status=DeliveryStatus.CANCELLED)
        .order_by()
        .values("event")
        .annotate(status=status)
        .values("status")
    )
    return Subquery(per_event, output_field=CharField())


def events_for_organization(*, organization) -> QuerySet[Event]:
    """The organization's events, each annotated with ``status`` (``_status_from_deliveries``:
    a page costs one query whatever the number of deliveries)."""
    return (
        Event.objects.filter(organization=organization)
        .defer("body", "headers", "query", "payload")
        .annotate(status=Coalesce(_status_from_deliveries(), Value(EventStatus.NO_DELIVERIES)))
    )


# Below this many characters a body search is not run: a trigram index cannot narrow it,
# so it would read every body of the organization.
SEARCH_MIN_BODY_CHARS = 3


class BodyContains(Func):
    """``body`` (bytes) contains ``needle``, case-insensitively.

    On PostgreSQL the body is seen through ``encode(body, 'escape')`` — bytes as themselves,
    except NUL and bytes over 0x7F as ``\\ooo`` and a backslash doubled — which is what the trigram index of migration
    ``intake.0005`` covers (``event_body_trgm``), so a search stays fast at a million events.
    The needle is escaped the same way, so a non-ASCII needle matches its UTF-8 bytes.
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


def event_detail(*, organization, event_id: str) -> Event:
    """One event with its body, status, deliveries and attempts; 404 for another organization."""
    event = events_for_organization(organization=organization).defer(None).filter(pk=event_id).first()
    if event is None:
        raise Http404("No such event.")
    event.delivery_list = list(
        Delivery.objects.filter(event=event)
        .order_by("created_at", "id")
        .only(
            "id",
            "destination_id",
            "connection_id",
            "subscription_id",
            "status",
            "attempt_count",
            "last_error",
            "created_at",
            "completed_at",
            "transformed_payload",
        )
    )
    event.attempt_list = list(DeliveryAttempt.objects.filter(event=event).order_by("created_at", "id"))
    return event


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


def source_for_ingest(*, source_id: str) -> tuple[Source | None, list[Connection]]:
    """The source of an ingest request and its live routes (``source_routes``).

    On PostgreSQL this is one query, the routes coming along as a JSON array, so ingest pays
    one round trip fewer on its hottest path. Elsewhere it is two.
    """
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


def topic_for_publish(*, organization, slug_or_id: str) -> Topic:
    topics = Topic.objects.filter(organization=organization)
    topic = topics.filter(pk=slug_or_id).first() if slug_or_id.startswith("top_") else None
    topic = topic or topics.filter(slug=slug_or_id).first()
    if topic is None:
        raise Http404("No such topic.")
    return topic
