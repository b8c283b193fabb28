"""What the monitoring app does when the engine announces something (``deliveries.signals``,
``intake.signals``): count issues, observe Prometheus metrics, write the domain log lines.

Receivers run after the engine's transaction has committed; a receiver that fails is logged
by the sender and does not affect the delivery.
"""

from __future__ import annotations

import logging

from django.dispatch import receiver

from deliveries import signals
from deliveries.models import AttemptStatus, DeadLetterReason
from destinations.models import Destination
from intake import signals as intake_signals
from monitoring import prometheus, services
from monitoring.classify import error_type_of
from monitoring.models import ErrorType

logger = logging.getLogger("hookstream.deliveries")


def _outcome(attempt) -> str:
    if attempt.status == AttemptStatus.SUCCESS:
        return "success"
    if attempt.is_dlq:
        return "dead"
    return "retry" if attempt.next_retry_at else "failed"


def _issue(**kwargs) -> None:
    issue, opened = services.issue_record(**kwargs)
    if opened:
        prometheus.ISSUES_OPENED.labels(issue.error_type).inc()


@receiver(intake_signals.event_received, dispatch_uid="monitoring.event_received")
def on_event_received(sender, *, event, **kwargs) -> None:
    prometheus.EVENTS_RECEIVED.labels("publish" if event.topic_id else "ingest").inc()


@receiver(signals.attempt_recorded, dispatch_uid="monitoring.attempt_recorded")
def on_attempt_recorded(sender, *, attempt, delivery, destination, outcome, **kwargs) -> None:
    prometheus.attempt_observe(
        destination_type=destination.type, outcome=_outcome(attempt), duration_ms=attempt.duration_ms
    )
    if attempt.status != AttemptStatus.FAILED:
        return
    _issue(
        organization_id=attempt.organization_id,
        destination_id=attempt.destination_id,
        error_type=error_type_of(response_status=attempt.response_status, error=attempt.error),
        message=attempt.error,
        attempt_id=attempt.pk,
        now=attempt.created_at,
    )


# A failed attempt has counted already; these kinds of dead letter have no attempt of their own.
_DEAD_LETTER_ISSUES = {
    DeadLetterReason.TRANSFORM_FAILED: ErrorType.TRANSFORM_FAILED,
    DeadLetterReason.CIRCUIT_OPEN: ErrorType.CIRCUIT_OPEN,
}


@receiver(signals.delivery_dead_lettered, dispatch_uid="monitoring.delivery_dead_lettered")
def on_dead_lettered(sender, *, delivery, reason, error, **kwargs) -> None:
    prometheus.DEAD_LETTERS.labels(reason).inc()
    if reason in _DEAD_LETTER_ISSUES:
        _issue(
            organization_id=delivery.organization_id,
            destination_id=delivery.destination_id,
            error_type=_DEAD_LETTER_ISSUES[reason],
            message=error,
        )


@receiver(signals.circuit_transition, dispatch_uid="monitoring.circuit_transition")
def on_circuit_transition(sender, *, destination_id, old, new, **kwargs) -> None:
    prometheus.CIRCUIT_TRANSITIONS.labels(old, new).inc()
    if new != "open":
        return
    destination = (
        Destination.all_objects.filter(pk=destination_id).only("organization_id", "circuit_breaker_threshold").first()
    )
    if destination is None:
        return
    reason = (
        "the probe failed" if old == "half_open" else f"{destination.circuit_breaker_threshold} consecutive failures"
    )
    _issue(
        organization_id=destination.organization_id,
        destination_id=destination_id,
        error_type=ErrorType.CIRCUIT_OPEN,
        message=f"circuit opened after {reason}; deliveries are held",
    )
