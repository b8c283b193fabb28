"""Celery tasks of the monitoring app: thin wrappers that call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from monitoring import alerts, notify, rollups, services

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.minute", ignore_result=True, expires=55)
def minute() -> None:
    """Beat, every minute: resolve quiet issues, roll metrics up, evaluate alert rules.

    Each step runs on its own: one failing does not stop the others."""
    for step in (
        services.issues_resolve_quiet,
        rollups.rollups_advance,
        alerts.alert_rules_evaluate,
        notify.notifications_rewake,
    ):
        try:
            step()
        except Exception:
            logger.exception("monitoring step %s failed", step.__name__)


@shared_task(
    name="monitoring.notification_send",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=len(notify.NOTIFICATION_RETRY_SECONDS),
)
def notification_send(self, notification_id: str) -> None:
    """Send one notification; retried with growing waits, then marked failed."""
    try:
        notify.notification_deliver(notification_id=notification_id)
    except notify.SendFailed as exc:
        if self.request.retries >= self.max_retries:
            notify.notification_give_up(notification_id=notification_id)
            return
        raise self.retry(countdown=notify.NOTIFICATION_RETRY_SECONDS[self.request.retries], exc=exc) from None
