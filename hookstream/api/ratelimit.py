"""Per-organization (or per client IP) fixed-window rate limits, stored in the cache.

The cache is Redis when ``REDIS_URL`` is set (shared by every web process), local memory
otherwise. The ``RateLimit-*`` headers are added by ``RequestIdMiddleware``.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling

WINDOW_SECONDS = 60


def hit(bucket: str, limit: int) -> tuple[bool, int, int]:
    """Count one request in ``bucket``; returns (allowed, remaining, seconds to reset)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"rl:{bucket}:{window}"
    cache.add(key, 0, WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, WINDOW_SECONDS + 5)
        count = 1
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
