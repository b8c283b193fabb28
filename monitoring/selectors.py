"""Reads of the monitoring app that views, the console and alerts share."""

from __future__ import annotations

from django.db.models import Count, QuerySet

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
