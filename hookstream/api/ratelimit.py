"""Per-organization (or per client IP) fixed-window rate limits.

The counters live in Redis when ``REDIS_URL`` is set (shared by every web process), in the
local-memory cache otherwise. The ``RateLimit-*`` headers are added by ``RequestIdMiddleware``.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling

from hookstream.redis_client import redis_client

WINDOW_SECONDS = 60


def _count(key: str) -> int:
    """Add one to the counter ``key`` (created with the window's expiry); returns its value."""
    if settings.REDIS_URL:
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS + 5, nx=True)
        return int(pipe.execute()[0])
    cache.add(key, 0, WINDOW_SECONDS + 5)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, WINDOW_SECONDS + 5)
        return 1


def hit(bucket: str, limit: int) -> tuple[bool, int, int]:
    """Count one request in ``bucket``; returns (allowed, remaining, seconds to reset)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    count = _count(f"rl:{bucket}:{window}")
    reset = int(WINDOW_SECONDS - (now % WINDOW_SECONDS)) or 1
    return count <= limit, max(limit - count, 0), reset


def check(request, bucket: str, limit: int) -> bool:
    allowed, remaining, reset = hit(bucket, limit)
    request.ratelimit = (limit, remaining, reset)
    return allowed


class OrganizationRateThrottle(throttling.BaseThrottle):
    def allow_request(self, request, view):
        limit = settings.HOOKSTREAM_RATE_LIMIT_PER_MINUTE
        org = getattr(request._request, "organization", None)
        if not limit or org is None:
            return True
        allowed = check(request._request, f"org:{org.pk}", limit)
        self._reset = request._request.ratelimit[2]
        return allowed

    def wait(self):
        return getattr(self, "_reset", WINDOW_SECONDS)


# --- counters with their own expiry (the login throttle) ---------------------------------


def counter_add(key: str, ttl: int) -> int:
    """Add one to ``key``, which expires ``ttl`` seconds after its first count; returns the count."""
    if settings.REDIS_URL:
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, ttl, nx=True)
        return int(pipe.execute()[0])
    if cache.add(key, 0, ttl):
        cache.set(f"{key}:until", time.time() + ttl, ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, ttl)
        cache.set(f"{key}:until", time.time() + ttl, ttl)
        return 1


def counter_peek(key: str) -> tuple[int, int]:
    """(count, seconds until it expires) of ``key``; (0, 0) when there is none."""
    if settings.REDIS_URL:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
        return (int(count), max(int(ttl), 1)) if count is not None else (0, 0)
    count = cache.get(key)
    if count is None:
        return 0, 0
    until = cache.get(f"{key}:until") or time.time() + 1
    return int(count), max(int(until - time.time()), 1)


def counter_clear(key: str) -> None:
    if settings.REDIS_URL:
        redis_client().delete(key)
    else:
        cache.delete_many([key, f"{key}:until"])
