"""Counterparts for the egress tests: loopback listeners that record whether anything reached
them, servers that misbehave on purpose, destinations of every type aimed at one address, and a
guard that fails a test when a connection to a forbidden address is even attempted."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from destinations.providers import get_provider
from hookstream import crypto
from tests.factories import make_destination

KEYS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "secret-key-1234"}


class Listener:
    """A TCP port on loopback that nobody answers: :meth:`reached` tells whether any client
    connected (the kernel completes a handshake even before ``accept``)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.create_server((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]

    def reached(self, wait: float = 0.3) -> bool:
        self.sock.settimeout(wait)
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return False
        conn.close()
        return True

    def close(self) -> None:
        self.sock.close()


class Server:
    """A TCP server on loopback whose every connection is handled by ``handler(conn)`` in a
    thread; ``connections`` counts them."""

    def __init__(self, handler: Callable[[socket.socket], None], host: str = "127.0.0.1"):
        self.sock = socket.create_server((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.connections = 0
        self.sent = 0
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def close(self) -> None:
        self._closed = True
        self.sock.close()


def read_request_head(conn: socket.socket) -> bytes:
    """Read a request's head and its Content-Length body (an unread body would make closing
    the connection reset it, and the client could lose the answer)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def target_config(type_: str, host: str, port: int) -> tuple[str, dict]:
    """``(url column, provider_config)`` of a destination of ``type_`` aimed at host:port."""
    at = _netloc(host, port)
    return {
        "http": (f"http://{at}/hook", {}),
        "sqs": (
            "",
            {"queue_url": f"http://{at}/123456789012/q", "region": "us-east-1", "endpoint_url": f"http://{at}", **KEYS},
        ),
        "s3": ("", {"bucket": "b", "region": "us-east-1", "endpoint_url": f"http://{at}", **KEYS}),
        "eventbridge": ("", {"region": "us-east-1", "endpoint_url": f"http://{at}", **KEYS}),
        "kafka": ("", {"rest_url": f"http://{at}", "cluster_id": "c1", "topic": "t"}),
        "rabbitmq": ("", {"url": f"http://{at}", "exchange": "amq.direct", "username": "u", "password": "p"}),
        "websocket": (f"ws://{at}/feed", {"channel_name": "orders"}),
    }[type_]


# The field whose target each type's validation names.
TARGET_FIELD = {
    "http": "url",
    "sqs": "provider_config.queue_url",
    "s3": "provider_config.endpoint_url",
    "eventbridge": "provider_config.endpoint_url",
    "kafka": "provider_config.rest_url",
    "rabbitmq": "provider_config.url",
    "websocket": "url",
}
TYPES = tuple(TARGET_FIELD)


def stored_destination(org, type_: str, host: str, port: int, **fields):
    """A destination row aimed at host:port as if it had been saved before the rules (no
    validation), with its secrets encrypted as usual."""
    url, config = target_config(type_, host, port)
    provider = get_provider(type_)
    fields.setdefault("timeout_ms", 2000)
    fields.setdefault("retry_max_attempts", 1)
    return make_destination(
        org, type=type_, url=url, provider_config=crypto.encrypt_fields(config, provider.secret_fields()), **fields
    )


def elapsed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start
