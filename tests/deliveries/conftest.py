"""Fixtures of the delivery tests: a real Celery worker on the Redis broker, real receivers."""

from __future__ import annotations

import threading

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connections

import deliveries.tasks  # noqa: F401  (registers the tasks)
from deliveries.beat import beat_run
from hookstream.celery import app
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
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def require_redis_broker() -> None:
    require_service(
        "Redis broker",
        _broker_is_redis() and port_open("127.0.0.1", 6379),
        "set CELERY_BROKER_URL=redis://127.0.0.1:6379/<db>",
    )


@pytest.fixture
def worker_factory(transactional_db):
    """Start real Celery workers (threads pool) consuming from the Redis broker."""
    require_postgres()
    require_redis_broker()


    # Leftover messages of an earlier run would only be duplicate wake-ups, but start clean.
    broker_redis().flushdb()
    started = []

    def close_thread_connections(**_kwargs):
        # Worker threads outlive the test: leave no connection open on the test database.
        connections.close_all()

    task_postrun.connect(close_thread_connections, weak=False)

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
        started.append((context, worker))
        return worker

    yield start
    for context, worker in reversed(started):
        context.__exit__(None, None, None)
        # The test worker stops by "terminate", which leaves the threads pool running the
        # tasks it had already taken: drop those and wait for the running ones, so no task
        # touches the database after the test.
        executor = getattr(worker.pool, "executor", None)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    task_postrun.disconnect(close_thread_connections)


@pytest.fixture
def worker(worker_factory):
    return worker_factory(4)


@pytest.fixture
def beat_loop(transactional_db):
    """Run beat ticks in a background thread (as ``celery beat`` would), every 0.2 s."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop():
        try:
            while not stop.is_set():
                try:
                    beat_run()
                except Exception as exc:  # surfaced at teardown
                    errors.append(exc)
                stop.wait(0.2)
        finally:
            connections.close_all()

    def start():
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        threads.append(thread)

    threads: list = []
    yield start
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
