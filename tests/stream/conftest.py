"""A real stream process for the tests: uvicorn serving ``hookstream.asgi`` on a loopback port.

It runs in a thread of the test process, so it shares the test database (the tests that use
it are transactional: rows must be committed to be seen from the server's threads).
"""

import asyncio
import socket
import threading
import time

import pytest
import uvicorn
from asgiref.sync import sync_to_async
from django.db import connections


class StreamServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
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


@pytest.fixture
def stream_server(transactional_db):
    server = StreamServer().start()
    yield server
    server.stop()
