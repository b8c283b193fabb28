"""Retention: delete old events with their deliveries, attempts and dead letters."""

import re
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from deliveries.models import UNFINISHED_STATUSES, Delivery, DeliveryAttempt
from intake.models import Event

_AGE = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)


def parse_age(value: str) -> timedelta:
    match = _AGE.match(value or "")
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"--older-than: {value!r} is not an age like 30d or 12h (a positive number of days or hours).")
    number, unit = int(match.group(1)), match.group(2).lower()
    return timedelta(days=number) if unit == "d" else timedelta(hours=number)


def purge_events(*, age: timedelta, batch_size: int = 1000, on_batch=None) -> dict:
    """Delete events received before now - age, in batches; returns counts.

    Events with a delivery that is not finished yet (pending, in flight, scheduled, held by a
    paused destination or an open circuit) are kept and counted as ``kept_unfinished``:
    retention never takes away an event the engine still has to deliver.
    """
    cutoff = timezone.now() - age
    expired = Event.objects.filter(received_at__lt=cutoff)
    unfinished = Delivery.objects.filter(event_id=OuterRef("pk"), status__in=UNFINISHED_STATUSES)
    old = expired.exclude(Exists(unfinished))
    total = old.count()
    kept = expired.filter(Exists(unfinished)).count()
    counts = {"events": 0, "deliveries": 0, "attempts": 0, "kept_unfinished": kept}
    while True:
        ids = list(old.order_by("received_at", "id").values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            counts["attempts"] += DeliveryAttempt.objects.filter(event_id__in=ids).delete()[0]
            counts["deliveries"] += Delivery.objects.filter(event_id__in=ids).delete()[1].get("deliveries.Delivery", 0)
            counts["events"] += Event.objects.filter(pk__in=ids).delete()[1].get("intake.Event", 0)
        if on_batch:
            on_batch(min(counts["events"], total), total)
    if on_batch and total == 0:
        on_batch(0, 0)
    return counts


def purge_old_events() -> dict | None:
    """For beat (task ``deliveries.purge_old_events``): apply HOOKSTREAM_RETENTION_DAYS (0: off)."""
    days = settings.HOOKSTREAM_RETENTION_DAYS
    if not days:
        return None
    return purge_events(age=timedelta(days=days))
