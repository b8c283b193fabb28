"""The workers' HTTP client sends straight on the pinned urllib3 pool: what requests used to
do for it (URL credentials, re-quoting, failure classification, keep-alive) still holds."""

from __future__ import annotations

import base64
import socket

import pytest

from deliveries.engine import process_delivery
from deliveries.models import DeliveryAttempt
from destinations.providers.transport import MAX_RESPONSE_READ
from tests.factories import make_delivery, make_destination, make_event


def _deliver(org, destination):
    delivery = make_delivery(make_event(org, {"type": "order.created"}), destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    return delivery, DeliveryAttempt.objects.get(delivery=delivery)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_it_calls_a_refused_connection_a_connection_error_not_a_time_out(alice):
    destination = make_destination(alice.org, url=f"http://127.0.0.1:{_closed_port()}/hook", retry_intervals=[60])

    delivery, attempt = _deliver(alice.org, destination)

    assert delivery.status == "scheduled"
    assert attempt.error.startswith("connection error:"), attempt.error
    assert attempt.response_status is None


@pytest.mark.django_db
def test_it_turns_credentials_in_the_url_into_basic_auth(alice, receiver):
    port = receiver.server.server_address[1]
    destination = make_destination(alice.org, url=f"http://bob:s%40cret@127.0.0.1:{port}/hook?a=1 2")

    delivery, _attempt = _deliver(alice.org, destination)

    assert delivery.status == "succeeded"
    request = receiver.requests[0]
    assert request.path == "/hook?a=1%202"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bob:s@cret").decode()
    assert request.headers["Accept"] == "*/*"


@pytest.mark.django_db
def test_it_drops_the_connection_after_a_body_too_long_to_read_and_stays_usable(alice, receiver):
    receiver.script.append((200, {}, b"x" * (MAX_RESPONSE_READ + 10)))
    destination = make_destination(alice.org, url=receiver.url)

    first, attempt = _deliver(alice.org, destination)
    second, _ = _deliver(alice.org, destination)

    assert first.status == "succeeded" and second.status == "succeeded"
    assert len(attempt.response_body) <= MAX_RESPONSE_READ
