"""Issue 12, findings 7, 8 and 9, and the S3 read channel of finding 1: an attempt reads a
bounded answer, lasts at most ``timeout_ms`` of wall-clock time whatever the receiver does, and
stores a bounded set of response headers. Real misbehaving servers on loopback."""

from __future__ import annotations

import time

import pytest

from deliveries.models import DeliveryAttempt
from destinations.providers import aws
from hookstream.outbound import MAX_STORED_HEADER_BYTES, MAX_STORED_HEADERS
from tests.providers.support import deliver
from tests.security.egress_support import Server, read_request_head, stored_destination

HUGE = 50 * 1024 * 1024


@pytest.fixture(autouse=True)
def fresh_aws_clients():
    aws.clear_clients()
    yield
    aws.clear_clients()


def _serve(handler):
    server = Server(handler)
    return server


def huge_answer(server_ref):
    def handler(conn):
        read_request_head(conn)
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n"
        server_ref[0].send(conn, head.encode())
        chunk = b" " * 65536
        for _ in range(HUGE // len(chunk)):
            server_ref[0].send(conn, chunk)

    return handler


def drip(head: bytes, *, seconds: float = 30.0):
    """Answer ``head`` one byte every 0.2 s (for at most ``seconds``)."""

    def handler(conn):
        read_request_head(conn)
        stop = time.monotonic() + seconds
        for byte in head:
            if time.monotonic() > stop:
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.2)

    return handler


@pytest.mark.parametrize("type_", ["kafka", "rabbitmq", "http"])
def test_a_huge_answer_is_not_read_into_memory(alice, type_):
    ref: list[Server] = []
    server = _serve(huge_answer(ref))
    ref.append(server)
    try:
        destination = stored_destination(alice.org, type_, "127.0.0.1", server.port, timeout_ms=10000)
        _event, delivery = deliver(alice.org, destination)

        time.sleep(0.3)
        # The client stopped reading and dropped the connection long before 50 MB.
        assert server.sent < 16 * 1024 * 1024, server.sent
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.response_status == 200
        assert len(attempt.response_body) <= 256 * 1024
    finally:
        server.close()


@pytest.mark.parametrize("type_", ["http", "kafka", "rabbitmq", "sqs", "websocket"])
def test_timeout_ms_bounds_the_whole_attempt_against_a_dripping_receiver(alice, type_):
    if type_ == "websocket":
        head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + b"X: y\r\n" * 40
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"{" * 200
    server = _serve(drip(head))
    try:
        destination = stored_destination(alice.org, type_, "127.0.0.1", server.port, timeout_ms=1000)
        start = time.monotonic()
        _event, delivery = deliver(alice.org, destination)
        took = time.monotonic() - start

        assert took < 3.0, f"{type_} held the attempt {took:.1f} s with timeout_ms=1000"
        assert delivery.status != "succeeded"
        assert "time" in delivery.last_error.lower(), delivery.last_error
    finally:
        server.close()


@pytest.mark.parametrize("type_", ["http", "kafka"])
def test_stored_response_headers_are_capped(alice, type_):
    def handler(conn):
        read_request_head(conn)
        lines = "".join(f"X-Filler-{n}: {'v' * 60000}\r\n" for n in range(90))
        conn.sendall(f"HTTP/1.1 500 Oops\r\n{lines}Content-Length: 2\r\n\r\n{{}}".encode())

    server = _serve(handler)
    try:
        destination = stored_destination(alice.org, type_, "127.0.0.1", server.port)
        _event, delivery = deliver(alice.org, destination)

        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.response_status == 500, attempt.error
        headers = attempt.response_headers
        assert len(headers) <= MAX_STORED_HEADERS
        assert sum(len(k) + len(v) for k, v in headers.items()) <= MAX_STORED_HEADER_BYTES + MAX_STORED_HEADERS
    finally:
        server.close()


def test_an_s3_endpoint_answer_is_not_stored_as_a_read_channel(alice):
    secret = "internal-document-" + "S" * 5000

    def handler(conn):
        read_request_head(conn)
        body = secret.encode()
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    server = _serve(handler)
    try:
        destination = stored_destination(alice.org, "s3", "127.0.0.1", server.port)
        _event, delivery = deliver(alice.org, destination)

        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.response_status == 403
        assert "S" * 250 not in attempt.response_body and "S" * 250 not in attempt.error
    finally:
        server.close()
