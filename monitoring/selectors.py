"""Reads of the monitoring app that views, the console and alerts share."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from deliveries.metrics import overview as today_overview
from deliveries.models import DeadLetter
from destinations.models import Destination, DestinationStatus
from intake.models import Source, SourceStatus
from monitoring import rollups
from monitoring.models import Issue, IssueStatus

ISSUE_STATUS_FILTERS = ("open", "acknowledged", "resolved", "all")


def issues_for_organization(*, organization, status: str = "open", destination_id: str | None = None) -> QuerySet:
    rows = Issue.objects.filter(organization=organization).select_related("destination")
    if status != "all":
        rows = rows.filter(status=status)
    if destination_id:
        rows = rows.filter(destination_id=destination_id)
    return rows


def issue_summary(*, organization) -> dict:
    counts = dict(
        Issue.objects.filter(organization=organization).values_list("status").annotate(n=Count("pk")).order_by()
    )
    return {status: counts.get(status, 0) for status in IssueStatus.values}


def overview(*, organization) -> dict:
    """Today's numbers (this project's fields) and the hosted product's field names."""
    today = today_overview(organization=organization)
    now = timezone.now()
    week_start = (today["since"] - timedelta(days=today["since"].weekday())).replace(hour=0, minute=0, second=0)
    week = rollups.volume_series(organization=organization, after=week_start, before=now, granularity="day")
    attempts = today["attempts"]
    finished = attempts["succeeded"] + attempts["failed"]
    return {
        **today,
        "events_today": today["events"],
        "events_this_week": sum(week.values()),
        "active_sources": Source.objects.filter(organization=organization, status=SourceStatus.ACTIVE).count(),
        "deliveries_today": attempts["total"],
        "success_today": attempts["succeeded"],
        "failed_today": attempts["failed"],
        "success_rate_today": round(attempts["succeeded"] / finished * 100, 2) if finished else None,
        "dlq_count": DeadLetter.objects.filter(organization=organization).count(),
        "active_destinations": Destination.objects.filter(
            organization=organization, status=DestinationStatus.ACTIVE
        ).count(),
        "open_issues": Issue.objects.filter(organization=organization).exclude(status=IssueStatus.RESOLVED).count(),
    }
