"""The process's Redis client for the shared counters and signals that bypass Django's cache
(rate limits, version tokens, the live stream's bus).

One client, and so one connection pool, per process and time-out (redis-py clients are
thread-safe). Django's Redis cache backend builds a client per call; these are on every
request's path. Time-outs are short: a slow Redis must cost the caller its fallback, never a
hung request.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client(timeout: float = 1.0) -> redis.Redis:
    """The client for ``REDIS_URL`` whose connects and reads give up after ``timeout`` seconds."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
