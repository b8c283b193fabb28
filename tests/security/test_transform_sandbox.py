"""Issue 12, finding 5: tenant transforms run in a sandbox, never in a web request.

The sandbox (``hookstream.sandbox``) is a pool of child processes with a hard wall-clock limit
(the child is killed) and a memory limit (``RLIMIT_AS``); the worker applies a route's
transform before the first attempt, and a breach dead-letters the delivery (``transform_limit``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from django.conf import settings

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, Delivery, DeliveryStatus
from deliveries.services import delivery_retry
from hookstream import sandbox
from intake import filters, transforms
from intake.models import Connection
from tests.deliveries.conftest import broker_redis, require_redis_broker
from tests.deliveries.receiver import wait_until
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest
from tests.support import require_postgres

BACKTRACKING = '{"x": $contains(s, /^(a+)+$/)}'
EVIL_EVENT = {"s": "a" * 31 + "!"}  # 2^31 ways to fail the match
HUGE_RANGE = '{"n": $count([1..10000000])}'


@pytest.fixture
def pool():
    box = sandbox.Sandbox(workers=1, memory_mb=64, max_result_bytes=4096)
    yield box
    box.close()


# --- the sandbox itself ------------------------------------------------------------------------


def test_it_reuses_a_child_between_calls(pool):
    first = pool.call("os:getpid", timeout_ms=5000)
    assert first != os.getpid()
    assert pool.call("os:getpid", timeout_ms=5000) == first


def test_it_kills_a_computation_at_its_time_limit_and_replaces_the_child(pool):
    child = pool.call("os:getpid", timeout_ms=5000)
    started = time.monotonic()
    with pytest.raises(sandbox.SandboxLimitExceeded) as raised:
        pool.call("re:fullmatch", "(a+)+$", EVIL_EVENT["s"], timeout_ms=500)
    assert time.monotonic() - started < 2.0
    assert raised.value.kind == sandbox.TIME and str(raised.value) == "exceeded its 500 ms limit"
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # killed and reaped
    replacement = pool.call("os:getpid", timeout_ms=5000)
    assert replacement not in (child, os.getpid())


def test_it_stops_an_allocation_beyond_the_memory_limit_and_keeps_working(pool):
    with pytest.raises(sandbox.SandboxLimitExceeded) as raised:
        pool.call("builtins:bytearray", 200 * 1024 * 1024, timeout_ms=5000)
    assert raised.value.kind == sandbox.MEMORY and "64 MB memory limit" in str(raised.value)
    assert pool.call("builtins:len", "still here", timeout_ms=5000) == 10


def test_it_refuses_an_answer_over_the_size_limit(pool):
    with pytest.raises(sandbox.SandboxLimitExceeded) as raised:
        pool.call("operator:mul", "x", 10_000, timeout_ms=5000)
    assert raised.value.kind == sandbox.OUTPUT
    assert pool.call("operator:mul", "x", 3, timeout_ms=5000) == "xxx"


def test_it_reports_what_the_function_raised_and_keeps_the_child(pool):
    child = pool.call("os:getpid", timeout_ms=5000)
    with pytest.raises(sandbox.SandboxFailed) as raised:
        pool.call("json:loads", "{", timeout_ms=5000)
    assert "Expecting property name" in str(raised.value)
    assert pool.call("os:getpid", timeout_ms=5000) == child


def test_it_serves_many_threads_with_its_few_children():
    box = sandbox.Sandbox(workers=2, memory_mb=64, max_result_bytes=4096)
    pids, errors = [], []

    def work():
        try:
            for _ in range(5):
                pids.append(box.call("os:getpid", timeout_ms=10_000))
        except Exception as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        box.close()
    assert errors == [] and len(pids) == 40
    assert len(set(pids)) <= 2


def test_it_lets_fast_calls_through_while_another_thread_is_stuck():
    box = sandbox.Sandbox(workers=2, memory_mb=64, max_result_bytes=4096)
    stuck = threading.Thread(
        target=lambda: pytest.raises(sandbox.SandboxLimitExceeded, box.call, "time:sleep", 30, timeout_ms=3000)
    )
    try:
        box.call("os:getpid", timeout_ms=10_000)  # warm one child
        stuck.start()
        time.sleep(0.2)
        started = time.monotonic()
        for _ in range(20):
            assert box.call("operator:add", 1, 2, timeout_ms=10_000) == 3
        assert time.monotonic() - started < 2.0
    finally:
        stuck.join(10)
        box.close()


# --- transforms in the delivery worker ----------------------------------------------------------


def _route(org, transform_expression):
    source, destination = make_source(org), make_destination(org)
    Connection.objects.create(
        organization=org, source=source, destination=destination, transform_expression=transform_expression
    )
    return source


def _ingest_one(client, source, body) -> Delivery:
    started = time.monotonic()
    response = ingest(client, source, body)
    assert response.status_code == 200
    # The ingest does not evaluate the transform (the first request of a run pays for imports).
    assert time.monotonic() - started < 2.0
    delivery = Delivery.objects.get(event_id=response.json()["event_id"])
    assert delivery.transform_pending and delivery.status == DeliveryStatus.PENDING
    return delivery


def test_it_dead_letters_a_catastrophically_backtracking_transform_within_its_limit(alice, client, settings):
    settings.HOOKSTREAM_TRANSFORM_TIMEOUT_MS = 1000
    delivery = _ingest_one(client, _route(alice.org, BACKTRACKING), EVIL_EVENT)

    started = time.monotonic()
    process_delivery(delivery.pk)
    assert time.monotonic() - started < 3.0

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempt_count == 0
    assert delivery.last_error == "transform exceeded its 1000 ms limit"
    dead_letter = DeadLetter.objects.get(delivery=delivery)
    assert dead_letter.reason == "transform_limit" and dead_letter.last_error == delivery.last_error


def test_it_dead_letters_a_transform_that_breaches_its_memory_limit_and_the_next_one_works(alice, client, settings):
    settings.HOOKSTREAM_TRANSFORM_MEMORY_MB = 64
    settings.HOOKSTREAM_TRANSFORM_TIMEOUT_MS = 20_000  # the memory limit, not the clock, stops it
    delivery = _ingest_one(client, _route(alice.org, HUGE_RANGE), {})
    started = time.monotonic()
    process_delivery(delivery.pk)
    assert time.monotonic() - started < 10.0

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.last_error == "transform exceeded its 64 MB memory limit"
    assert DeadLetter.objects.get(delivery=delivery).reason == "transform_limit"

    following = _ingest_one(client, _route(alice.org, '{"n": $count([1..1000])}'), {})
    process_delivery(following.pk)
    following.refresh_from_db()
    assert following.transformed_payload == {"n": 1000} and not following.transform_pending


def test_it_applies_the_fixed_transform_when_a_limit_dead_letter_is_retried(alice, client, settings):
    settings.HOOKSTREAM_TRANSFORM_TIMEOUT_MS = 300
    delivery = _ingest_one(client, _route(alice.org, BACKTRACKING), EVIL_EVENT)
    process_delivery(delivery.pk)
    assert DeadLetter.objects.get(delivery=delivery).reason == "transform_limit"

    Connection.objects.filter(pk=delivery.connection_id).update(transform_expression='{"length": $length(s)}')
    delivery.refresh_from_db()
    delivery_retry(delivery=delivery)
    process_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.transformed_payload == {"length": 32} and delivery.attempt_count == 1


def test_it_dead_letters_a_pending_transform_whose_connection_was_deleted(alice, client):
    delivery = _ingest_one(client, _route(alice.org, '{"secret": "stripped"}'), {"secret": "s3cr3t"})
    Connection.objects.filter(pk=delivery.connection_id).delete()
    process_delivery(delivery.pk)
    delivery.refresh_from_db()
    # Sending the untransformed body instead could leak what the transform was there to remove.
    assert delivery.status == DeliveryStatus.DEAD and "deleted" in delivery.last_error
    assert DeadLetter.objects.get(delivery=delivery).reason == "transform_failed"


def test_it_refuses_an_expression_that_takes_too_long_to_compile(settings):
    settings.HOOKSTREAM_TRANSFORM_TIMEOUT_MS = 300
    started = time.monotonic()
    errors = transforms.expression_errors("a." * 4990 + "b")  # parsing paths is quadratic
    assert time.monotonic() - started < 3.0
    assert errors == ["invalid JSONata: the expression took longer than 300 ms to compile"]
    assert transforms.expression_errors('{"a": b}') == []


def test_it_evaluates_filter_rules_in_linear_time():
    """Filters stay at ingest: no regex, and ``contains`` is a substring search."""
    haystack = "a" * 1_000_000
    context = filters.event_context(payload={"s": haystack}, headers={}, method="POST", content_type="", source_ip="")
    rules = [{"field": "payload.s", "op": "contains", "value": "a" * 5000 + "b"}] * filters.MAX_RULES
    started = time.monotonic()
    assert not filters.rules_match(rules, context)
    assert time.monotonic() - started < 1.0


# --- a real gunicorn and a real Celery worker -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _spawn(args, env):
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_another_organization_is_served_while_a_worker_evaluates_a_backtracking_transform(alice, bob, transactional_db):
    require_postgres()
    require_redis_broker()
    broker_redis().flushdb()
    source = _route(alice.org, BACKTRACKING)
    make_destination(bob.org)
    plain = make_source(bob.org)  # ingest without a transform, to warm both web workers' ingest path
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "HOOKSTREAM_TRANSFORM_TIMEOUT_MS": "1000",
        "HOOKSTREAM_INGEST_RATE_LIMIT_PER_MINUTE": "0",
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    web = _spawn(["gunicorn", "hookstream.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"], env)
    worker = _spawn(
        [
            "celery",
            "-A",
            "hookstream",
            "worker",
            "--pool",
            "threads",
            "-c",
            "4",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        env,
    )
    bob_api = requests.Session()
    bob_api.headers["X-API-Key"] = bob.raw_key
    try:
        wait_until(lambda: _answers(bob_api, f"{base}/v1/destinations"), timeout=30, message="gunicorn up")
        for _ in range(4):  # both web workers warm, their ingest path included
            assert bob_api.get(f"{base}/v1/destinations", timeout=10).status_code == 200
            assert requests.post(f"{base}/v1/ingest/{plain.pk}", json={"warm": True}, timeout=10).status_code == 200

        # Two evil events, as many as there are web workers: each is answered at once.
        answers = []
        for _ in range(2):
            started = time.monotonic()
            response = requests.post(f"{base}/v1/ingest/{source.pk}", json=EVIL_EVENT, timeout=10)
            answers.append((response.status_code, time.monotonic() - started))
        assert all(status == 200 and took < 1.0 for status, took in answers), answers

        # While the worker evaluates one, bob's API calls are answered in well under a second.
        wait_until(
            lambda: Delivery.objects.filter(event__source=source, status=DeliveryStatus.IN_FLIGHT).exists(),
            timeout=30,
            message="the worker picks up the evil delivery",
        )
        evaluating = Delivery.objects.filter(event__source=source, status=DeliveryStatus.IN_FLIGHT)
        for round_number in range(3):
            started = time.monotonic()
            assert bob_api.get(f"{base}/v1/destinations", timeout=10).status_code == 200
            assert time.monotonic() - started < 1.0
            if round_number == 0:
                assert evaluating.exists()  # answered while the transform was still running

        wait_until(
            lambda: Delivery.objects.filter(event__source=source, status=DeliveryStatus.DEAD).count() == 2,
            timeout=30,
            message="both evil deliveries dead-lettered",
        )
        assert set(DeadLetter.objects.filter(event__source=source).values_list("reason", "last_error")) == {
            ("transform_limit", "transform exceeded its 1000 ms limit")
        }
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(session: requests.Session, url: str) -> bool:
    try:
        return session.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
