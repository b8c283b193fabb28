"""Retry math of a destination (spec §3)."""

from __future__ import annotations

import random

from destinations.models import DEFAULT_RETRY_INTERVALS, BackoffType

# Jitter, when a destination opts in: the wait is scaled by a factor drawn from this range.
JITTER_RANGE = (0.8, 1.2)


def _intervals(destination) -> list[float]:
    intervals = destination.retry_intervals
    if not isinstance(intervals, list) or not intervals:
        return list(DEFAULT_RETRY_INTERVALS)
    cleaned = []
    for value in intervals:
        try:
            cleaned.append(max(float(value), 0.0))
        except (TypeError, ValueError):
            continue
    return cleaned or list(DEFAULT_RETRY_INTERVALS)


def retry_delay_seconds(destination, retry_number: int, *, jitter: bool | None = None) -> float:
    """How long retry ``retry_number`` (1 for the first retry) waits.

    exponential: ``intervals[min(N-1, len-1)]``; linear: ``intervals[0] × N``; fixed:
    ``intervals[0]``. With ``retry_jitter`` the wait is scaled by a random factor in
    :data:`JITTER_RANGE`.
    """
    intervals = _intervals(destination)
    n = max(retry_number, 1)
    kind = destination.retry_backoff_type
    if kind == BackoffType.LINEAR:
        delay = intervals[0] * n
    elif kind == BackoffType.FIXED:
        delay = intervals[0]
    else:
        delay = intervals[min(n - 1, len(intervals) - 1)]
    if destination.retry_jitter if jitter is None else jitter:
        delay *= random.uniform(*JITTER_RANGE)
    return delay


def retry_window_seconds(destination) -> float:
    """The whole retry window: the sum of every retry's wait (no jitter)."""
    return sum(retry_delay_seconds(destination, n, jitter=False) for n in range(1, destination.retry_max_attempts + 1))
