"""Celery tasks of the monitoring app: thin wrappers that call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from monitoring import services

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.minute", ignore_result=True, expires=55)
def minute() -> None:
    """Beat, every minute: resolve quiet issues (then, later, rollups and alert rules).

    Each step runs on its own: one failing does not stop the others."""
    for step in (services.issues_resolve_quiet,):
        try:
            step()
        except Exception:
            logger.exception("monitoring step %s failed", step.__name__)
