"""Reads of deliveries reused by views and other apps: attempts, dead letters, jobs; events
with their status and a destination's delivery count, both derived from the deliveries."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least, TruncHour
from django.db.models.lookups import GreaterThan
from django.http import Http404

from deliveries.models import (
    UNFINISHED_STATUSES,
    AttemptStatus,
    DeadLetter,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    DestinationDeliveryCount,
    ReplayJob,
)
from destinations.models import Destination
from hookstream.models import Organization
from intake.models import Event


def attempts_for_organization(*, organization) -> QuerySet[DeliveryAttempt]:
    return DeliveryAttempt.objects.filter(organization=organization)


def attempts_for_event(*, event) -> QuerySet[DeliveryAttempt]:
    """An event's attempts, oldest first (the event detail lists them)."""
    return DeliveryAttempt.objects.filter(event=event).order_by("created_at", "id")


def destination_for_organization(*, organization, destination_id: str) -> Destination:
    """A live destination of ``organization``; 404 for anything else (another org's id too)."""
    destination = Destination.objects.filter(organization=organization, pk=destination_id).first()
    if destination is None:
        raise Http404("No such destination.")
    return destination


def dead_letters_for_destination(*, destination) -> QuerySet[DeadLetter]:
    return DeadLetter.objects.filter(destination=destination).select_related("delivery")


def delivery_for_attempt(*, attempt: DeliveryAttempt) -> Delivery:
    return Delivery.objects.select_related("destination").get(pk=attempt.delivery_id)


def replay_job_for_organization(*, organization, job_id: str) -> ReplayJob:
    job = ReplayJob.objects.filter(organization=organization, pk=job_id).first()
    if job is None:
        raise Http404("No such replay job.")
    return job


# --- events and their status -------------------------------------------------------------


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


# The status filters, over the ``status`` annotation of ``events_for_organization``.
STATUS_CONDITIONS = {name: Q(status=name) for name in EventStatus.ALL}
# A pending event has an unfinished delivery, and unfinished deliveries are few (those on
# their way now): the filter starts from them (a semi-join on the ``delivery_event_unfinished``
# partial index). Without it, a filter that matches little computes the status of every event
# of the organization to find out (1.5 s at 300,000 events with none pending; 45 ms with it).
# Dead deliveries accumulate, so the failed filters keep the plain scan in list order.
STATUS_CONDITIONS[EventStatus.PENDING] &= Q(
    pk__in=Delivery.objects.filter(status__in=UNFINISHED_STATUSES).values("event_id")
)


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
            ("open", UNFINISHED_STATUSES),
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


# --- destinations with their delivery count ----------------------------------------------


def destinations_with_delivery_counts(*, organization: Organization) -> QuerySet[Destination]:
    """The organization's live destinations, each annotated with ``delivery_count``.

    The count is a correlated subquery rather than a JOIN + GROUP BY, so a page of the list
    is one query and no JSON column is grouped on. On PostgreSQL it sums the destination's
    rows of ``DestinationDeliveryCount`` (kept by triggers): a few rows per destination,
    whatever the number of deliveries. Elsewhere it counts the deliveries (index-only).
    """
    if connection.vendor == "postgresql":
        counts = (
            DestinationDeliveryCount.objects.filter(destination_id=OuterRef("pk"))
            .order_by()
            .values("destination_id")
            .annotate(total=Sum("n"))
            .values("total")
        )
    else:
        counts = (
            Delivery.objects.filter(destination=OuterRef("pk"))
            .order_by()
            .values("destination")
            .annotate(n=Count("*"))  # COUNT(*): an index-only scan, no heap fetch per delivery
            .values("n")
        )
    return Destination.objects.filter(organization=organization).annotate(
        delivery_count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
    )


def destination_with_delivery_count(*, organization: Organization, destination_id: str) -> Destination:
    """One live destination of ``organization`` with ``delivery_count``; 404 otherwise."""
    destination = destinations_with_delivery_counts(organization=organization).filter(pk=destination_id).first()
    if destination is None:
        raise Http404("No such destination.")
    return destination


# --- pages of the console ----------------------------------------------------------------------

WAITING_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD)


def attempts_for_destination(*, destination) -> QuerySet[DeliveryAttempt]:
    """The destination's attempts, newest first."""
    return DeliveryAttempt.objects.filter(destination=destination).order_by("-created_at", "-id")


def waiting_delivery_counts(*, destination) -> dict[str, int]:
    """How many of the destination's deliveries are pending, scheduled and held."""
    waiting = dict.fromkeys(WAITING_STATUSES, 0)
    rows = Delivery.objects.filter(destination=destination, status__in=list(waiting)).values_list("status", flat=True)
    for status in rows.iterator():
        waiting[status] += 1
    return waiting


def dead_letter_for_destination(*, destination, dead_letter_id: str) -> DeadLetter:
    """One dead letter of ``destination`` with its delivery; 404 otherwise."""
    dead_letter = (
        DeadLetter.objects.select_related("delivery", "delivery__destination")
        .filter(organization_id=destination.organization_id, destination=destination, pk=dead_letter_id)
        .first()
    )
    if dead_letter is None:
        raise Http404("No such dead letter.")
    return dead_letter


def with_last_attempt(destinations: QuerySet[Destination]) -> QuerySet[Destination]:
    """``destinations`` annotated with their latest attempt's ``last_attempt_at``,
    ``last_attempt_status`` and ``last_attempt_code`` (HTTP status)."""
    last = DeliveryAttempt.objects.filter(destination=OuterRef("pk")).order_by("-created_at", "-id")
    return destinations.annotate(
        last_attempt_at=Subquery(last.values("created_at")[:1]),
        last_attempt_status=Subquery(last.values("status")[:1]),
        last_attempt_code=Subquery(last.values("response_status")[:1]),
    )


def events_delivered_to(events: QuerySet, *, destination_id: str) -> QuerySet:
    """The ``events`` that have a delivery to the destination."""
    return events.filter(Exists(Delivery.objects.filter(event=OuterRef("pk"), destination_id=destination_id)))


def delivery_status_counts(*, event_ids) -> dict[str, list[tuple[str, int]]]:
    """``{event_id: [(delivery status, how many), …]}`` for these events (one query)."""
    summary = defaultdict(list)
    rows = (
        Delivery.objects.filter(event_id__in=event_ids)
        .order_by()
        .values_list("event_id", "status")
        .annotate(n=Count("pk"))
        .order_by("event_id", "status")
    )
    for event_id, status, n in rows:
        summary[event_id].append((status, n))
    return summary


def recent_failed_attempts(*, organization, limit: int) -> QuerySet[DeliveryAttempt]:
    """The latest failed attempts to the organization's live destinations."""
    return (
        DeliveryAttempt.objects.select_related("destination")
        .filter(organization=organization, status=AttemptStatus.FAILED, destination__deleted_at__isnull=True)
        .order_by("-created_at", "-id")[:limit]
    )


def dead_letter_counts_by_destination(*, organization, limit: int) -> QuerySet:
    """``[{"destination_id", "destination__name", "n"}]``: the live destinations with the most
    dead letters waiting."""
    return (
        DeadLetter.objects.filter(organization=organization, destination__deleted_at__isnull=True)
        .values("destination_id", "destination__name")
        .annotate(n=Count("pk"))
        .order_by("-n", "destination__name")[:limit]
    )


def attempt_counts_by_hour(*, organization, since: datetime) -> dict[datetime, dict[str, int]]:
    """``{hour: {"ok": n, "failed": n}}`` of the organization's attempts since ``since``
    (hours without attempts are absent)."""
    rows = (
        DeliveryAttempt.objects.filter(organization=organization, created_at__gte=since)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(
            ok=Count("pk", filter=Q(status=AttemptStatus.SUCCESS)),
            failed=Count("pk", filter=Q(status=AttemptStatus.FAILED)),
        )
        .order_by("hour")
    )
    return {row["hour"]: {"ok": row["ok"], "failed": row["failed"]} for row in rows}


def dead_letters_by_delivery(*, event) -> dict[str, DeadLetter]:
    """``{delivery_id: DeadLetter}`` of the event's dead deliveries (one query)."""
    return {dead_letter.delivery_id: dead_letter for dead_letter in DeadLetter.objects.filter(event=event)}
