"""WebSocket destinations against a real server on loopback (websockets' sync server)."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from django.test import override_settings
from websockets.sync.server import serve

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, DeliveryAttempt
from tests.factories import make_delivery, make_event
from tests.providers.support import assert_retried_by_policy_then_dead_lettered, deliver, provider_destination


class Server:
    def __init__(self, *, ack=None, process_request=None):
        self.frames: list[dict] = []
        self.headers: list[dict] = []
        self.ack = ack  # None: never answer; otherwise the reply text
        self._server = serve(self._handler, "127.0.0.1", 0, process_request=process_request)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/feed"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self, conn):
        self.headers.append({k.lower(): v for k, v in conn.request.headers.raw_items()})
        for text in conn:
            self.frames.append(json.loads(text))
            if self.ack is not None:
                conn.send(self.ack)

    def close(self):
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def servers():
    started = []

    def start(**kwargs):
        server = Server(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def _destination(org, url, **config):
    fields = {k: config.pop(k) for k in ("retry_intervals", "retry_max_attempts", "timeout_ms") if k in config}
    return provider_destination(org, "websocket", {"channel_name": "orders.eu", **config}, url=url, **fields)


@pytest.mark.django_db
def test_it_sends_the_event_frame_with_the_configured_headers(alice, servers):
    server = servers()
    destination = _destination(alice.org, server.url, headers={"X-Tenant": "alice"})
    event, delivery = deliver(alice.org, destination, {"type": "order.created", "amount": 3})

    assert delivery.status == "succeeded"
    for _ in range(100):
        if server.frames:
            break
        threading.Event().wait(0.02)
    assert server.frames == [
        {
            "type": "event.delivered",
            "channel": "orders.eu",
            "data": {
                "event_id": event.id,
                "destination_id": str(destination.pk),
                "payload": {"type": "order.created", "amount": 3},
            },
        }
    ]
    assert server.headers[0]["x-tenant"] == "alice"
    assert server.headers[0]["x-hookstream-event-id"] == event.id


@pytest.mark.django_db
def test_require_ack_succeeds_on_an_ack(alice, servers):
    server = servers(ack=json.dumps({"type": "ack"}))
    destination = _destination(alice.org, server.url, require_ack=True, timeout_ms=2000)
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "succeeded"
    assert len(server.frames) == 1


@pytest.mark.django_db
def test_require_ack_without_an_ack_is_retryable(alice, servers):
    server = servers()
    destination = _destination(alice.org, server.url, require_ack=True, timeout_ms=300, retry_intervals=[60])
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "scheduled"
    assert "no ack" in DeliveryAttempt.objects.get(delivery=delivery).error


@pytest.mark.django_db
def test_a_refused_handshake_is_recorded_with_its_status_and_retried_by_policy(alice, servers):
    server = servers(process_request=lambda conn, req: conn.respond(403, "no\n"))
    destination = _destination(alice.org, server.url, retry_intervals=[0], retry_max_attempts=1)
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "handshake refused: HTTP 403")
    assert [a.response_status for a in attempts] == [403, 403]
    assert server.frames == []


@pytest.mark.django_db
def test_a_server_that_is_down_is_retried_then_dead_lettered(alice):
    destination = _destination(
        alice.org, "ws://127.0.0.1:9/feed", timeout_ms=1000, retry_intervals=[0], retry_max_attempts=1
    )
    event = make_event(alice.org, {"type": "order.created"})
    delivery = make_delivery(event, destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "scheduled"
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    assert DeadLetter.objects.get(delivery=delivery).reason == "retries_exhausted"


@pytest.mark.django_db
def test_a_handshake_refused_with_503_is_retryable(alice, servers):
    server = servers(process_request=lambda conn, req: conn.respond(503, "busy\n"))
    destination = _destination(alice.org, server.url, retry_intervals=[60])
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "scheduled"
    assert DeliveryAttempt.objects.get(delivery=delivery).response_status == 503


@pytest.mark.django_db
def test_the_ssrf_guard_refuses_a_private_server_permanently(alice, servers):
    server = servers()
    destination = _destination(alice.org, server.url)
    with override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False):
        _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "dead"
    assert "SSRF guard" in delivery.last_error
    assert server.frames == []


@pytest.mark.django_db
def test_the_connection_goes_to_the_address_the_guard_checked(alice, servers, monkeypatch):
    """A name that answers differently on a second lookup (DNS rebinding) cannot redirect the
    handshake: the provider resolves once and connects to that very address."""
    server = servers()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host == "rebind.test":
            lookups.append(host)
            # First answer: loopback (where the server is); any later one: a black hole.
            answer = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, args[0] if args else port))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    destination = _destination(alice.org, f"ws://rebind.test:{port}/feed", timeout_ms=2000)
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "succeeded", delivery.last_error
    assert lookups == ["rebind.test"]
    assert server.headers[0]["host"] == f"rebind.test:{port}"
