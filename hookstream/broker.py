"""The Redis broker transport, hardened against a Redis restart.

With kombu's own Redis transport a worker may exit with "Unrecoverable error:
AttributeError" when Redis restarts while it holds unacknowledged messages (``acks_late``
tasks running or prefetched): once the consumer has torn the old connection down, closing the
old channel (which pushes unacknowledged messages back) or the late ack of a task that was
running builds a Redis client from a transport that is already gone. That AttributeError is
not a connection error, so it escapes every ``ignore_errors`` guard and stops the worker,
and nothing is delivered until the process is restarted by hand.

Here a torn-down transport raises a Redis ``ConnectionError`` instead, which celery and kombu
already treat as "the connection is lost": the ack or the restore is skipped (logged) and the
consumer reconnects. Nothing is lost by skipping them: the broker only carries wake-ups, a
message left unacknowledged is a duplicate wake-up at worst (its claim finds nothing to do),
and beat re-wakes every due delivery from the database (``deliveries.beat``).
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection was closed (Redis restarted or unreachable)")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    """``CELERY_BROKER_TRANSPORT`` for ``redis://`` broker URLs (see ``hookstream.settings``)."""

    Channel = Channel
