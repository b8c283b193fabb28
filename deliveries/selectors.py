"""Reads of deliveries reused by views and other apps."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, ReplayJob
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
