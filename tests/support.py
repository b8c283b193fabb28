"""Shared helpers for tests that need a real service.

On a developer's machine a missing service skips the test; in CI (``CI=true``) it fails the
run, because CI must exercise every real counterpart.
"""

import asyncio
import os
import socket
import threading
import time

import pytest
import uvicorn
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, available: bool, hint: str = "") -> None:
    """Skip (laptop) or fail (CI) when ``name`` is not available."""
    if available:
        return
    message = f"{name} is not available" + (f": {hint}" if hint else "")
    if IN_CI:
        pytest.fail(message + " (CI must provide it)")
    pytest.skip(message)


def require_postgres() -> None:
    require_service("PostgreSQL", settings.IS_POSTGRES, "set DATABASE_URL=postgres://…")


def require_redis() -> None:
    require_service("Redis", bool(settings.REDIS_URL) and port_open("127.0.0.1", 6379), "set REDIS_URL=redis://…")


class StreamServer:
    """A real stream process: uvicorn serving ``hookstream.asgi`` on a loopback port, in a thread
    of the test process, so that it shares the test database (tests using it are
    transactional: rows must be committed to be seen from the server's threads)."""

    def __init__(self, port: int | None = None) -> None:
        """``port``: that one (a stream process restarted where its clients reconnect), else a free one."""
        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        config = uvicorn.Config(
            "hookstream.asgi:application",
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        await self.server.serve()
        # The server's database connections live in asgiref's executor thread: close them
        # there, or the test database cannot be dropped.
        await sync_to_async(connections.close_all, thread_sensitive=True)()

    def start(self) -> "StreamServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the stream server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def url(self, token: str | None = None) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws" + (f"?token={token}" if token else "")
