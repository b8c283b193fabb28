"""What intake announces, for the apps above it to hear (``monitoring`` counts events).

* ``event_received(event)`` — an event was stored (ingest or topic publish), sent once its
  transaction has committed.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

event_received = Signal()


def event_received_on_commit(event) -> None:
    def _send() -> None:
        for receiver, result in event_received.send_robust(sender=None, event=event):
            if isinstance(result, Exception):
                logger.error("signal receiver %r failed", receiver, exc_info=result)

    transaction.on_commit(_send)
