"""Writes of the monitoring app: issues (opened, counted, resolved, retried), alert rules and
notification channels. Alerts themselves are ``monitoring.alerts``; sends ``monitoring.notify``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import RetryRefused, delivery_retry
from hookstream import stream_bus
from monitoring.models import Issue, IssueStatus

logger = logging.getLogger(__name__)

UNRESOLVED = (IssueStatus.OPEN, IssueStatus.ACKNOWLEDGED)
# POST /v1/issues/:id/retry retries at most this many deliveries per call.
ISSUE_RETRY_LIMIT = 1000


def issue_stream_on_commit(issue: Issue) -> None:
    """Show the issue, as it is now, on the live stream's ``issues`` channel."""
    stream_bus.publish_on_commit(
        organization_id=issue.organization_id,
        channels=["issues"],
        frame={
            "type": "issue",
            "data": {
                "id": issue.pk,
                "destination_id": issue.destination_id,
                "error_type": issue.error_type,
                "message": issue.message,
                "status": issue.status,
                "occurrence_count": issue.occurrence_count,
                "first_seen_at": issue.first_seen_at.isoformat(),
                "last_seen_at": issue.last_seen_at.isoformat(),
            },
        },
    )


def issue_record(
    *,
    organization_id: str,
    destination_id: str,
    error_type: str,
    message: str,
    attempt_id: str | None = None,
    now: datetime | None = None,
) -> tuple[Issue, bool]:
    """Count one failure on its issue, opening the issue if none is unresolved.

    Returns the issue and whether it was opened now. The unresolved issue of a destination
    and kind is unique (a partial unique constraint); the row is locked while it is counted,
    and two workers opening it at once settle on the constraint (the loser counts on the
    winner's row).
    """
    now = now or timezone.now()
    message = (message or "")[:2000]
    for _ in range(3):
        with transaction.atomic():
            issue = (
                Issue.objects.select_for_update()
                .filter(destination_id=destination_id, error_type=error_type, status__in=UNRESOLVED)
                .first()
            )
            if issue is not None:
                issue.occurrence_count += 1
                issue.last_seen_at = max(issue.last_seen_at, now)
                issue.message = message or issue.message
                if attempt_id:
                    issue.recent_attempt_ids = [attempt_id, *issue.recent_attempt_ids][: Issue.RECENT_ATTEMPTS]
                issue.save(
                    update_fields=["occurrence_count", "last_seen_at", "message", "recent_attempt_ids", "updated_at"]
                )
                return issue, False
            try:
                with transaction.atomic():
                    issue = Issue.objects.create(
                        organization_id=organization_id,
                        destination_id=destination_id,
                        error_type=error_type,
                        message=message,
                        first_seen_at=now,
                        last_seen_at=now,
                        recent_attempt_ids=[attempt_id] if attempt_id else [],
                        created_at=now,
                    )
            except IntegrityError:
                continue  # opened by another worker a moment ago: count on it
            issue_stream_on_commit(issue)
            return issue, True
    raise RuntimeError(f"could not record an issue for {destination_id} / {error_type}")


def issue_update(*, issue: Issue, status: str | None = None, snoozed_until=..., now: datetime | None = None) -> Issue:
    """Change an issue's status (open, acknowledged, resolved) and/or its snooze.

    Reopening a resolved issue is refused when another unresolved issue of the same kind
    exists (the constraint), with a ValueError.
    """
    now = now or timezone.now()
    fields = ["updated_at"]
    if status is not None and status != issue.status:
        issue.status = status
        fields.append("status")
        if status == IssueStatus.ACKNOWLEDGED:
            issue.acknowledged_at = now
            fields.append("acknowledged_at")
        if status == IssueStatus.RESOLVED:
            issue.resolved_at = now
        else:
            issue.resolved_at = None
        fields.append("resolved_at")
    if snoozed_until is not ...:
        issue.snoozed_until = snoozed_until
        fields.append("snoozed_until")
    try:
        with transaction.atomic():
            issue.save(update_fields=fields)
    except IntegrityError:
        raise ValueError("another unresolved issue of this destination and kind exists") from None
    issue_stream_on_commit(issue)
    return issue


def issues_resolve_quiet(*, now: datetime | None = None) -> int:
    """Resolve unresolved issues without an occurrence for HOOKSTREAM_ISSUE_RESOLVE_MINUTES."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.HOOKSTREAM_ISSUE_RESOLVE_MINUTES)
    resolved = Issue.objects.filter(status__in=UNRESOLVED, last_seen_at__lt=cutoff).update(
        status=IssueStatus.RESOLVED, resolved_at=now, updated_at=now
    )
    if resolved:
        logger.info("resolved %d issues without a failure since %s", resolved, cutoff.isoformat())
    return resolved


def issue_retry(*, issue: Issue) -> dict:
    """Retry the issue's failed deliveries: its destination's dead and retry-scheduled
    deliveries that failed since the issue was first seen (at most ISSUE_RETRY_LIMIT)."""
    deliveries = (
        Delivery.objects.select_related("destination")
        .filter(
            destination_id=issue.destination_id,
            status__in=[DeliveryStatus.DEAD, DeliveryStatus.SCHEDULED],
            updated_at__gte=issue.first_seen_at,
        )
        .order_by("created_at", "id")[:ISSUE_RETRY_LIMIT]
    )
    retried, errors = [], []
    for delivery in deliveries:
        try:
            delivery_retry(delivery=delivery)
        except RetryRefused as exc:
            errors.append({"delivery_id": delivery.pk, "destination_id": delivery.destination_id, "error": str(exc)})
        else:
            retried.append({"delivery_id": delivery.pk, "destination_id": delivery.destination_id})
    return {"retried": retried, "errors": errors}
