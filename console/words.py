"""What the console says in words: durations, why a delivery is dead, a risky breaker setting.

The event page, the dead-letter lists and the destination form share these so an operator
reads the same explanation everywhere (a dead delivery without an attempt is not a lost event:
it says why it was never tried).
"""

from __future__ import annotations

from deliveries.models import DeadLetterReason
from deliveries.retry import retry_window_seconds

# Why a delivery was dead-lettered, by ``DeadLetter.reason``.
DEAD_LETTER_REASONS = {
    DeadLetterReason.RETRIES_EXHAUSTED: "retries exhausted: every attempt of the retry policy failed",
    DeadLetterReason.PERMANENT_FAILURE: (
        "permanent failure: it cannot be sent as configured (a refused target, an invalid URL or header, "
        "a message over a size limit); retrying cannot fix it"
    ),
    DeadLetterReason.CIRCUIT_OPEN: "circuit open: held until the retry window closed",
    DeadLetterReason.TRANSFORM_FAILED: "transform failed: the route's transform could not be applied to the event",
}
# What the engine writes after "last error: " when there was none.
_NO_ERROR = "none"


def human_seconds(seconds: float) -> str:
    """``90`` → "1.5 min", ``7200`` → "2 h": retry intervals and cooldowns as people say them."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}" if (seconds * 10) % size == 0 else f"{seconds / size:.1f} {unit}"
    return f"{seconds:g} s"


def dead_letter_reason(reason: str) -> str:
    """A dead letter's reason in words (an unknown code is shown as it is)."""
    return DEAD_LETTER_REASONS.get(reason, reason.replace("_", " "))


def last_error_words(error: str, *, attempt_count: int) -> str:
    """The last error as shown: the error itself, or why there is none."""
    error = (error or "").strip()
    if error.endswith(f"last error: {_NO_ERROR}") or not error:
        if attempt_count == 0:
            return "none: no attempt was made"
        return "none recorded"
    return error


def cooldown_warning(destination) -> str | None:
    """A warning when the breaker stays open longer than the whole retry window: deliveries
    held by the open circuit are then dead-lettered before its probe, without being tried."""
    if not destination.circuit_breaker_enabled:
        return None
    cooldown = destination.circuit_breaker_reset_ms / 1000
    window = retry_window_seconds(destination)
    if cooldown <= window:
        return None
    return (
        f"The circuit breaker stays open {human_seconds(cooldown)} (probe after), longer than the whole retry "
        f"window ({human_seconds(window)} over {destination.retry_max_attempts} "
        f"retr{'y' if destination.retry_max_attempts == 1 else 'ies'}): while the circuit is open, deliveries are "
        "held and then dead-lettered with reason “circuit open” before the probe, without being tried. "
        "Shorten the probe delay or lengthen the retry intervals."
    )
