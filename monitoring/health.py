"""Liveness and readiness for process managers and orchestrators.

* ``GET /healthz`` — the process answers: 200 ``{"status": "ok"}``. It touches nothing else,
  so a database outage does not make an orchestrator restart every web process.
* ``GET /readyz`` — the process can do its work: the database answers ``SELECT 1`` and the
  broker accepts a connection. 200 ``{"status": "ready", "checks": {...}}``, else 503 with
  the failing check's reason. Each check is bounded: the database by ``DB_CONNECT_TIMEOUT``
  (PostgreSQL) and a statement time-out, the broker by ``HOOKSTREAM_READY_TIMEOUT_SECONDS``.

Both are unauthenticated, answer JSON, and never reach DRF (no rate limit, no session).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from kombu import Connection

from hookstream.celery import app as celery_app


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def database_check(alias: str = "default") -> str | None:
    """None when the database answers ``SELECT 1``, else the reason."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                timeout_ms = int(settings.HOOKSTREAM_READY_TIMEOUT_SECONDS * 1000)
                cursor.execute(f"SET statement_timeout = {timeout_ms}")
                cursor.execute("SELECT 1")
                cursor.execute("SET statement_timeout = DEFAULT")
            else:
                cursor.execute("SELECT 1")
    except Exception as exc:  # any failure is "not ready", with its reason
        # Drop the broken connection so that the next request opens a fresh one.
        connection.close_if_unusable_or_obsolete()
        return f"database unreachable: {_first_line(exc)}"
    return None


def broker_check(url: str | None = None) -> str | None:
    """None when the Celery broker accepts a connection, else the reason."""
    timeout = settings.HOOKSTREAM_READY_TIMEOUT_SECONDS
    if url is None:
        conn = celery_app.connection_for_write()
    else:
        conn = Connection(url)
    conn.connect_timeout = timeout
    try:
        conn.transport_options = {
            **conn.transport_options,
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
        }
        # One try, no retry loop: the probe's caller retries on its own schedule.
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        channel = conn.default_channel
        if hasattr(channel, "client") and hasattr(channel.client, "ping"):
            channel.client.ping()  # Redis: connecting is lazy; a PING proves it answers
    except Exception as exc:
        return f"broker unreachable: {_first_line(exc)}"
    finally:
        try:
            conn.release()
        except Exception:
            pass
    return None


@never_cache
@require_http_methods(["GET", "HEAD"])
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_http_methods(["GET", "HEAD"])
def readyz(request):
    started = time.monotonic()
    failures = {}
    checks = {}
    for name, check in (("database", database_check), ("broker", broker_check)):
        reason = check()
        checks[name] = "ok" if reason is None else "failed"
        if reason is not None:
            failures[name] = reason
    body = {"status": "ready" if not failures else "unavailable", "checks": checks}
    if failures:
        body["reason"] = "; ".join(failures.values())
    body["duration_ms"] = int((time.monotonic() - started) * 1000)
    return JsonResponse(body, status=503 if failures else 200)
