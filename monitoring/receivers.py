"""What the monitoring app does when the engine announces something (``deliveries.signals``,
``intake.signals``): count issues, observe Prometheus metrics, write the domain log lines.

Receivers run after the engine's transaction has committed; a receiver that fails is logged
by the sender and does not affect the delivery.
"""

from __future__ import annotations

import logging
import threading

from celery import signals as celery_signals
from django.dispatch import receiver
from django.utils import timezone

from deliveries import signals
from deliveries.models import AttemptStatus, DeadLetterReason
from destinations.models import Destination
from intake import signals as intake_signals
from monitoring import prometheus, services
from monitoring.classify import error_type_of
from monitoring.logs import context_bind, context_reset
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
    outcome_name = _outcome(attempt)
    prometheus.attempt_observe(destination_type=destination.type, outcome=outcome_name, duration_ms=attempt.duration_ms)
    ids = _ids(attempt.organization_id, attempt.destination_id, attempt.delivery_id)
    if attempt.status != AttemptStatus.FAILED:
        logger.debug(
            "delivery %s to %s succeeded in %s ms",
            attempt.delivery_id,
            destination.name,
            attempt.duration_ms,
            extra=ids,
        )
        return
    if outcome_name == "retry":
        wait = max(0, round((attempt.next_retry_at - timezone.now()).total_seconds()))
        then = f"retry {attempt.attempt_number - delivery.cycle_start_attempt} in {wait} s"
    elif outcome_name == "dead":
        then = "no retries left"
    else:
        then = "not retried"
    logger.warning(
        "delivery %s to %s (%s) failed, attempt %d: %s; %s",
        attempt.delivery_id,
        destination.name,
        destination.type,
        attempt.attempt_number,
        attempt.error or f"HTTP {attempt.response_status}",
        then,
        extra=ids,
    )
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
    logger.warning(
        "delivery %s dead-lettered (%s): %s",
        delivery.pk,
        reason,
        error,
        extra=_ids(delivery.organization_id, delivery.destination_id, delivery.pk),
    )
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
    level = logging.WARNING if new == "open" else logging.INFO
    logger.log(
        level, "circuit of destination %s: %s -> %s", destination_id, old, new, extra={"destination_id": destination_id}
    )
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


@receiver(signals.delivery_requeued, dispatch_uid="monitoring.delivery_requeued")
def on_delivery_requeued(sender, *, delivery, trigger_type, **kwargs) -> None:
    logger.info(
        "delivery %s sent again (%s retry)",
        delivery.pk,
        trigger_type,
        extra=_ids(delivery.organization_id, delivery.destination_id, delivery.pk),
    )


@receiver(signals.replay_started, dispatch_uid="monitoring.replay_started")
def on_replay_started(sender, *, job, **kwargs) -> None:
    logger.info(
        "replay %s started: %d events of %s..%s to destination %s",
        job.pk,
        job.total,
        job.range_from.isoformat() if job.range_from else "-",
        job.range_to.isoformat() if job.range_to else "-",
        job.destination_id,
        extra={"organization_id": job.organization_id, "destination_id": job.destination_id},
    )


def _ids(organization_id, destination_id, delivery_id) -> dict:
    return {"organization_id": organization_id, "destination_id": destination_id, "delivery_id": delivery_id}


# --- the log context of Celery tasks ---------------------------------------------------------

# The first argument of these tasks is the id that their log lines are about.
_TASK_CONTEXT = {"deliveries.deliver": "delivery_id", "deliveries.deliver_destination": "destination_id"}
_tokens = threading.local()


@celery_signals.task_prerun.connect(weak=False, dispatch_uid="monitoring.task_prerun")
def _task_context_bind(sender=None, task_id=None, task=None, args=None, **kwargs) -> None:
    field = _TASK_CONTEXT.get(getattr(task, "name", ""))
    values = {"task_id": task_id}
    if field and args:
        values[field] = args[0]
    _tokens.token = context_bind(**values)


@celery_signals.task_postrun.connect(weak=False, dispatch_uid="monitoring.task_postrun")
def _task_context_reset(**kwargs) -> None:
    token = getattr(_tokens, "token", None)
    if token is not None:
        _tokens.token = None
        try:
            context_reset(token)
        except ValueError:  # bound in another context (an eager task): nothing to undo here
            pass
