"""Alert rules, evaluated by beat every minute (``monitoring.minute``).

For each enabled rule: compute its figure over its window (``window_minutes``, default 5),
and when the figure crosses the threshold and the rule's cooldown is over, notify each of its
channels. The cooldown is claimed with a conditional UPDATE on ``last_triggered_at``, so two
beats evaluating at once notify once.

* ``failure_rate`` — failed / all attempts in the window (at least ``min_attempts``).
* ``latency`` — the ``percentile_target`` of attempt durations in the window, in ms.
* ``volume_drop`` — events in the window against the window before, as a percent drop.
* ``dlq`` — deliveries dead-lettered in the window.
* ``issue_opened`` — issues opened since the previous evaluation (snoozed ones excepted).

``source_id`` / ``destination_id`` narrow a rule; without them it covers the organization.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from deliveries.models import AttemptStatus, DeadLetter, DeliveryAttempt
from intake.models import Event
from monitoring.models import AlertRule, Issue, NotificationChannel, RuleType
from monitoring.notify import notification_create

logger = logging.getLogger(__name__)


@dataclass
class Finding:
    """What fired a rule: the figure, the threshold, a sentence, and the context."""

    value: float | int | None
    threshold: float | int | None
    message: str
    last_error: str = ""
    issue: Issue | None = None


def _window(rule: AlertRule) -> timedelta:
    return timedelta(minutes=int(rule.rule_config.get("window_minutes", 5)))


def _attempts(rule: AlertRule, since: datetime, until: datetime):
    rows = DeliveryAttempt.objects.filter(
        organization_id=rule.organization_id, created_at__gte=since, created_at__lt=until
    )
    if rule.destination_id:
        rows = rows.filter(destination_id=rule.destination_id)
    if rule.source_id:
        rows = rows.filter(event__source_id=rule.source_id)
    return rows


def _last_error(rule: AlertRule, since: datetime, until: datetime) -> str:
    failed = _attempts(rule, since, until).filter(status=AttemptStatus.FAILED).order_by("-created_at")
    return failed.values_list("error", flat=True).first() or ""


def percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    return sorted_values[max(1, math.ceil(len(sorted_values) * fraction)) - 1]


def _scope(rule: AlertRule) -> str:
    if rule.destination_id:
        return f"destination {rule.destination.name}"
    if rule.source_id:
        return f"source {rule.source.name}"
    return "all destinations"


def failure_rate(rule: AlertRule, now: datetime) -> Finding | None:
    since = now - _window(rule)
    counts = _attempts(rule, since, now).aggregate(
        total=Count("pk"), failed=Count("pk", filter=Q(status=AttemptStatus.FAILED))
    )
    total, failed = counts["total"], counts["failed"]
    threshold = rule.rule_config["threshold"]
    if total < rule.rule_config.get("min_attempts", 5) or failed / total < threshold:
        return None
    rate = round(failed / total, 4)
    return Finding(
        value=rate,
        threshold=threshold,
        message=f"{rate:.0%} of {total} attempts to {_scope(rule)} failed in the last "
        f"{rule.rule_config.get('window_minutes', 5)} minutes (threshold {threshold:.0%})",
        last_error=_last_error(rule, since, now),
    )


def latency(rule: AlertRule, now: datetime) -> Finding | None:
    since = now - _window(rule)
    target = rule.rule_config.get("percentile_target", "p95")
    durations = sorted(
        _attempts(rule, since, now).filter(duration_ms__isnull=False).values_list("duration_ms", flat=True)
    )
    value = percentile(durations, int(target[1:]) / 100)
    threshold = rule.rule_config["threshold_ms"]
    if value is None or value < threshold:
        return None
    return Finding(
        value=value,
        threshold=threshold,
        message=f"{target} latency of {_scope(rule)} is {value} ms over the last "
        f"{rule.rule_config.get('window_minutes', 5)} minutes (threshold {threshold} ms)",
        last_error=_last_error(rule, since, now),
    )


def volume_drop(rule: AlertRule, now: datetime) -> Finding | None:
    window = _window(rule)
    events = Event.objects.filter(organization_id=rule.organization_id)
    if rule.source_id:
        events = events.filter(source_id=rule.source_id)
    current = events.filter(received_at__gte=now - window, received_at__lt=now).count()
    previous = events.filter(received_at__gte=now - 2 * window, received_at__lt=now - window).count()
    if not previous:
        return None
    drop = round((previous - current) / previous * 100, 1)
    threshold = rule.rule_config["threshold"]
    if drop < threshold:
        return None
    scope = f"source {rule.source.name}" if rule.source_id else "the organization"
    return Finding(
        value=drop,
        threshold=threshold,
        message=f"events to {scope} dropped {drop}% ({previous} → {current}) against the previous "
        f"{rule.rule_config.get('window_minutes', 5)} minutes (threshold {threshold}%)",
    )


def dlq(rule: AlertRule, now: datetime) -> Finding | None:
    since = now - _window(rule)
    rows = DeadLetter.objects.filter(organization_id=rule.organization_id, created_at__gte=since, created_at__lt=now)
    if rule.destination_id:
        rows = rows.filter(destination_id=rule.destination_id)
    if rule.source_id:
        rows = rows.filter(event__source_id=rule.source_id)
    count = rows.count()
    threshold = rule.rule_config["threshold"]
    if count < threshold:
        return None
    last = rows.order_by("-created_at").values_list("last_error", flat=True).first() or ""
    return Finding(
        value=count,
        threshold=threshold,
        message=f"{count} deliveries to {_scope(rule)} were dead-lettered in the last "
        f"{rule.rule_config.get('window_minutes', 5)} minutes (threshold {threshold})",
        last_error=last,
    )


def issue_opened(rule: AlertRule, now: datetime) -> Finding | None:
    since = rule.last_evaluated_at or rule.created_at
    issues = Issue.objects.select_related("destination").filter(
        Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now),
        organization_id=rule.organization_id,
        created_at__gt=since,
        created_at__lte=now,
    )
    if rule.destination_id:
        issues = issues.filter(destination_id=rule.destination_id)
    opened = list(issues.order_by("-created_at")[:50])
    if not opened:
        return None
    latest = opened[0]
    more = f" (and {len(opened) - 1} more)" if len(opened) > 1 else ""
    return Finding(
        value=len(opened),
        threshold=None,
        message=f"new issue on destination {latest.destination.name}: {latest.error_type}{more}",
        last_error=latest.message,
        issue=latest,
    )


EVALUATORS = {
    RuleType.FAILURE_RATE: failure_rate,
    RuleType.LATENCY: latency,
    RuleType.VOLUME_DROP: volume_drop,
    RuleType.DLQ: dlq,
    RuleType.ISSUE_OPENED: issue_opened,
}


def console_url(*, finding: Finding, rule: AlertRule) -> str:
    base = settings.HOOKSTREAM_PUBLIC_URL
    if finding.issue is not None:
        try:
            return base + reverse("monitoring-console:issue-detail", args=[finding.issue.pk])
        except NoReverseMatch:  # the console is not installed
            return base + f"/issues/{finding.issue.pk}/"
    if rule.destination_id:
        return base + reverse("console:destination-detail", args=[rule.destination_id])
    return base + reverse("console:dashboard")


def alert_payload(*, rule: AlertRule, finding: Finding, now: datetime, test: bool = False) -> dict:
    """What every channel receives (a webhook as JSON; an email as text made from it)."""
    destination = finding.issue.destination if finding.issue is not None else rule.destination
    payload = {
        "type": "alert.test" if test else "alert.triggered",
        "title": f"{'Test: ' if test else ''}{rule.name}",
        "message": finding.message,
        "alert_rule": {"id": rule.pk, "name": rule.name, "rule_type": rule.rule_type, "rule_config": rule.rule_config},
        "destination": {"id": destination.pk, "name": destination.name} if destination is not None else None,
        "source": {"id": rule.source.pk, "name": rule.source.name} if rule.source_id else None,
        "value": finding.value,
        "threshold": finding.threshold,
        "last_error": finding.last_error,
        "console_url": console_url(finding=finding, rule=rule),
        "organization_id": rule.organization_id,
        "triggered_at": now.isoformat().replace("+00:00", "Z"),
    }
    if finding.issue is not None:
        payload["issue"] = {
            "id": finding.issue.pk,
            "error_type": finding.issue.error_type,
            "occurrence_count": finding.issue.occurrence_count,
            "first_seen_at": finding.issue.first_seen_at.isoformat().replace("+00:00", "Z"),
        }
    return payload


def alert_rule_evaluate(*, rule: AlertRule, now: datetime) -> Finding | None:
    """Evaluate one rule; notify its channels when it fires outside its cooldown."""
    finding = EVALUATORS[rule.rule_type](rule, now)
    previous = rule.last_evaluated_at
    AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now)
    if finding is None:
        return None
    if rule.last_triggered_at and now < rule.last_triggered_at + timedelta(minutes=rule.cooldown_minutes):
        return None
    with transaction.atomic():
        # The claim: only the evaluation that moves last_triggered_at notifies.
        claimed = AlertRule.objects.filter(pk=rule.pk, last_triggered_at=rule.last_triggered_at).update(
            last_triggered_at=now
        )
        if not claimed:
            return None
        payload = alert_payload(rule=rule, finding=finding, now=now)
        channels = list(rule.channels.all())
        for channel in channels:
            notification_create(channel=channel, payload=payload, rule=rule)
    logger.warning(
        "alert %s (%s) fired: %s; notifying %d channel(s)",
        rule.name,
        rule.rule_type,
        finding.message,
        len(channels),
        extra={"alert_rule_id": rule.pk, "organization_id": rule.organization_id, "since": str(previous)},
    )
    return finding


def alert_rules_evaluate(*, now: datetime | None = None) -> int:
    """Beat: evaluate every enabled rule; returns how many fired."""
    now = now or timezone.now()
    fired = 0
    for rule in AlertRule.objects.filter(enabled=True).select_related("source", "destination").order_by("pk"):
        try:
            fired += alert_rule_evaluate(rule=rule, now=now) is not None
        except Exception:
            logger.exception("alert rule %s could not be evaluated", rule.pk)
    return fired


def channel_test(*, channel: NotificationChannel):
    """``POST /v1/notification-channels/:id/test``: a sample alert to this channel."""
    now = timezone.now()
    rule = AlertRule(
        id="ar_test", organization_id=channel.organization_id, name="Test alert", rule_type=RuleType.ISSUE_OPENED
    )
    finding = Finding(value=None, threshold=None, message="This is a test notification from hookstream.", last_error="")
    payload = alert_payload(rule=rule, finding=finding, now=now, test=True)
    payload["console_url"] = settings.HOOKSTREAM_PUBLIC_URL + reverse("console:dashboard")
    with transaction.atomic():
        return notification_create(channel=channel, payload=payload)
