"""What the delivery engine announces, for the apps above it (``monitoring``) to hear.

The engine never imports those apps: it sends these signals and whoever listens reacts
(issues, alerts, Prometheus counters, log lines). Each is sent once the database change it
describes is committed (:func:`send_on_commit`), so a listener sees the rows and its own
work, or its failure, cannot roll the delivery's state back.

* ``attempt_recorded(attempt, delivery, destination, outcome)`` — an attempt was stored.
  ``attempt.status`` says success or failure; ``attempt.next_retry_at`` is set when a retry
  is scheduled, ``attempt.is_dlq`` when the delivery was dead-lettered with it.
* ``delivery_dead_lettered(delivery, reason, error)`` — a delivery joined the dead letter
  queue (retries exhausted, permanent failure, held past its window, failed transform).
* ``circuit_transition(destination_id, old, new)`` — a destination's circuit changed state.
* ``delivery_requeued(delivery, trigger_type)`` — a delivery was sent again by hand (retry,
  dead-letter retry); ``replay_started(job)`` — a replay job was created.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

attempt_recorded = Signal()
delivery_dead_lettered = Signal()
circuit_transition = Signal()
delivery_requeued = Signal()
replay_started = Signal()


def send_on_commit(signal: Signal, **kwargs) -> None:
    """Send ``signal`` once the current transaction commits (at once outside one).

    A listener that raises is logged and does not stop the others, nor the engine.
    """

    def _send() -> None:
        for receiver, result in signal.send_robust(sender=None, **kwargs):
            if isinstance(result, Exception):
                logger.error("signal receiver %r failed", receiver, exc_info=result)

    transaction.on_commit(_send)


def attempt_recorded_on_commit(*, attempt, delivery, destination, outcome) -> None:
    """Called as the engine's transaction opens; the receivers run after it commits and see
    the attempt as it was finally stored (``is_dlq``, ``next_retry_at``)."""
    send_on_commit(attempt_recorded, attempt=attempt, delivery=delivery, destination=destination, outcome=outcome)


def circuit_moved(destination_id: str, old: str, new: str) -> None:
    send_on_commit(circuit_transition, destination_id=destination_id, old=old, new=new)
