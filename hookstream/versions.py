"""Version tokens shared by every process: how a per-process cache learns at once that what
it holds has changed.

A *scope* (``routes:<organization id>``: an organization's sources and how their events are
routed) has a token in Redis. Whatever changes something the scope covers calls
:func:`bump`, which stores a new random token. A process that keeps a copy of a read keyed
by the token it saw *before* reading the database knows its copy is current as long as the
token has not moved: one Redis GET instead of the read, and a change made through any process
is seen by every gunicorn worker on its next request.

Why the rules below hold the copy right:

1. The token is read before the database. A change that commits after the read bumps the
   token after it, so the copy made from the old rows is dropped at the next look-up.
2. :func:`bump` sets a new token at once (the changing transaction sees its own change at
   once, and so do the tests, whose transactions never commit) and again when the
   transaction commits: a process that re-read between the two saw the rows as they were
   before the commit, and the second token makes it read again.
3. Tokens are random, never counters: a Redis that lost its data (flushed, restarted without
   persistence) gives a scope a fresh token, different from every one a process holds.
4. Without Redis (the embedded setup) or while Redis fails, :func:`current` answers None and
   callers read the database every time. Callers also re-read a copy older than
   :data:`MAX_AGE_SECONDS`, so a bump lost to a Redis outage is healed within that time.
"""

from __future__ import annotations

import logging
import secrets

import redis
from django.conf import settings
from django.db import transaction

from hookstream.redis_client import redis_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "hookstream:version:"
# Callers keep no copy longer than this, whatever the token says (see rule 4).
MAX_AGE_SECONDS = 30.0
# The look-up is on the ingest path: a slow Redis must cost a database read, not a hung request.
LOOKUP_TIMEOUT_SECONDS = 0.5


def routes_scope(organization_id: str) -> str:
    """The scope of an organization's sources, connections, topics, subscriptions and
    destinations: everything ingest and publish read to route an event."""
    return f"routes:{organization_id}"


def current(scope: str) -> bytes | str | None:
    """The scope's token now, or None when there is no shared cache to ask (no Redis, or it
    fails): then nothing may be cached for the scope."""
    if not settings.REDIS_URL:
        return None
    key = KEY_PREFIX + scope
    try:
        client = redis_client(LOOKUP_TIMEOUT_SECONDS)
        token = client.get(key)
        if token is None:
            # First use, or Redis lost its data: a fresh token, unlike any held copy.
            client.set(key, secrets.token_hex(8), nx=True)
            token = client.get(key)
        return token
    except redis.RedisError as exc:
        logger.warning("version token of %s unavailable: %s", scope, exc)
        return None


def _set_new(scope: str) -> None:
    try:
        redis_client(LOOKUP_TIMEOUT_SECONDS).set(KEY_PREFIX + scope, secrets.token_hex(8))
    except redis.RedisError as exc:
        logger.warning("could not bump the version token of %s: %s", scope, exc)


def bump(scope: str) -> None:
    """Something ``scope`` covers is changing: a new token now and another once the
    surrounding transaction commits (at once outside one)."""
    if not settings.REDIS_URL:
        return
    _set_new(scope)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _set_new(scope))
