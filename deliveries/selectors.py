"""Reads of deliveries reused by views and other apps."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncHour
from django.http import Http404

from deliveries.models import AttemptStatus, DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus, ReplayJob
from destinations.models import Destination


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
