"""The engine's announcements as stream frames (``deliveries`` and ``deliveries:<destination>``).

Receivers run after the attempt's transaction has committed (``deliveries.signals``), in the
worker that made it; ``hookstream.stream_bus.publish`` hands the frame to the stream
processes and never fails the delivery.
"""

from __future__ import annotations

from django.dispatch import receiver

from deliveries import signals
from hookstream import stream_bus


def attempt_frame(attempt) -> dict:
    return {
        "id": attempt.pk,
        "delivery_id": attempt.delivery_id,
        "event_id": attempt.event_id,
        "destination_id": attempt.destination_id,
        "attempt_number": attempt.attempt_number,
        "status": attempt.status,
        "response_status": attempt.response_status,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error,
        "is_dlq": attempt.is_dlq,
        "next_retry_at": attempt.next_retry_at.isoformat() if attempt.next_retry_at else None,
        "trigger_type": attempt.trigger_type,
        "created_at": attempt.created_at.isoformat(),
    }


@receiver(signals.attempt_recorded, dispatch_uid="stream.attempt_recorded")
def on_attempt_recorded(sender, *, attempt, destination, **kwargs) -> None:
    stream_bus.publish(
        organization_id=attempt.organization_id,
        channels=[f"deliveries:{destination.pk}", "deliveries"],
        frame={"type": "delivery", "data": attempt_frame(attempt)},
    )
