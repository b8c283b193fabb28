"""Fixtures of the delivery tests: a real Celery worker on the Redis broker, real receivers."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.deliveries.receiver import Receiver
from tests.support import port_open, require_postgres, require_service


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _broker_is_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith("redis://")


def broker_redis():
    """A client of the broker's Redis database (this environment's own db only)."""
    import redis

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@pytest.fixture
def worker_factory(transactional_db):
    """Start real Celery workers (threads pool) consuming from the Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from hookstream.celery import app

    require_postgres()
    require_service(
        "Redis broker",
        _broker_is_redis() and port_open("127.0.0.1", 6379),
        "set CELERY_BROKER_URL=redis://127.0.0.1:6379/<db>",
    )
    import deliveries.tasks  # noqa: F401  (registers the tasks)

    # Leftover messages of an earlier run would only be duplicate wake-ups, but start clean.
    broker_redis().flushdb()
    started = []

    def start(concurrency: int = 4):
        context = start_worker(
            app,
            concurrency=concurrency,
            pool="threads",
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=10,
        )
        worker = context.__enter__()
        started.append(context)
        return worker

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


@pytest.fixture
def worker(worker_factory):
    return worker_factory(4)
