"""RabbitMQ destinations against a real broker on loopback (Management API and AMQP)."""

from __future__ import annotations

import json
import uuid

import pika
import pytest
from django.test import override_settings
from pika.exceptions import StreamLostError

from deliveries.engine import process_delivery
from deliveries.models import DeliveryAttempt
from destinations.providers import rabbitmq
from tests.providers.support import (
    assert_retried_by_policy_then_dead_lettered,
    assert_unreachable_is_retried_then_dead_lettered,
    deliver,
    provider_destination,
)
from tests.support import port_open, require_service

AMQP_URL = "amqp://127.0.0.1:5672"
MGMT_URL = "http://127.0.0.1:15672"


@pytest.fixture
def channel():
    require_service("RabbitMQ", port_open("127.0.0.1", 5672) and port_open("127.0.0.1", 15672))

    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    ch = connection.channel()
    yield ch
    connection.close()


@pytest.fixture
def queue(channel):
    name = f"hs-test-{uuid.uuid4().hex[:12]}"
    channel.queue_declare(queue=name, auto_delete=True)
    channel.queue_bind(queue=name, exchange="amq.direct", routing_key=name)
    yield name
    channel.queue_delete(queue=name)


def _destination(org, **config_and_fields):
    fields = {k: config_and_fields.pop(k) for k in ("retry_intervals", "retry_max_attempts") if k in config_and_fields}
    config = {"url": MGMT_URL, "exchange": "amq.direct", "username": "guest", "password": "guest"}
    return provider_destination(org, "rabbitmq", {**config, **config_and_fields}, **fields)


def _read(channel, queue):
    method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
    assert method is not None, "no message in the queue"
    return properties, body


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["http", "amqp"])
def test_it_publishes_with_the_event_headers(alice, channel, queue, protocol):
    url = MGMT_URL if protocol == "http" else AMQP_URL
    destination = _destination(alice.org, url=url, routing_key=queue, protocol=protocol)
    event, delivery = deliver(alice.org, destination, {"type": "order.created", "amount": 7})

    assert delivery.status == "succeeded", DeliveryAttempt.objects.filter(delivery=delivery).first().error
    properties, body = _read(channel, queue)
    assert json.loads(body) == {"type": "order.created", "amount": 7}
    assert properties.content_type == "application/json"
    assert "hookstream-content-type" not in properties.headers
    assert properties.headers["hookstream-event-id"] == event.id
    assert properties.headers["hookstream-destination-id"] == str(destination.pk)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status == "success"
    assert "guest" not in json.dumps(attempt.request_headers)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["http", "amqp"])
def test_a_json_body_is_labelled_application_json_with_the_events_own_type_in_a_header(alice, channel, queue, protocol):
    url = MGMT_URL if protocol == "http" else AMQP_URL
    destination = _destination(alice.org, url=url, routing_key=queue, protocol=protocol)
    _event, delivery = deliver(
        alice.org, destination, {"data": {"id": "1"}}, content_type="application/vnd.api+json; charset=utf-8"
    )

    assert delivery.status == "succeeded", delivery.last_error
    properties, body = _read(channel, queue)
    assert json.loads(body) == {"data": {"id": "1"}}
    assert properties.content_type == "application/json"
    assert properties.headers["hookstream-content-type"] == "application/vnd.api+json; charset=utf-8"
    rabbitmq._drop(destination)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["http", "amqp"])
def test_a_body_that_is_not_json_keeps_its_own_content_type(alice, channel, queue, protocol):
    url = MGMT_URL if protocol == "http" else AMQP_URL
    destination = _destination(alice.org, url=url, routing_key=queue, protocol=protocol)
    _event, delivery = deliver(alice.org, destination, None, body=b"plain words", content_type="text/plain")

    assert delivery.status == "succeeded", delivery.last_error
    properties, body = _read(channel, queue)
    assert body == b"plain words"
    assert properties.content_type == "text/plain"
    assert "hookstream-content-type" not in properties.headers
    rabbitmq._drop(destination)


@pytest.mark.django_db
def test_amqp_reuses_the_connection(alice, channel, queue):

    destination = _destination(alice.org, url=AMQP_URL, routing_key=queue, protocol="amqp")
    deliver(alice.org, destination)
    first = rabbitmq._local.connections[str(destination.pk)][1]
    deliver(alice.org, destination)
    assert rabbitmq._local.connections[str(destination.pk)][1] is first
    _read(channel, queue)
    _read(channel, queue)
    rabbitmq._drop(destination)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["http", "amqp"])
def test_an_unroutable_message_is_retried_by_policy_then_dead_lettered(alice, channel, protocol):
    url = MGMT_URL if protocol == "http" else AMQP_URL
    destination = _destination(
        alice.org,
        url=url,
        routing_key=f"nobody-{uuid.uuid4().hex}",
        protocol=protocol,
        retry_intervals=[0],
        retry_max_attempts=2,
    )
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "unroutable")
    if protocol == "http":
        assert {a.response_status for a in attempts} == {200}
        assert all('"routed":false' in a.response_body.replace(" ", "") for a in attempts)
    rabbitmq._drop(destination)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["http", "amqp"])
def test_a_queue_bound_within_the_retry_window_gets_the_message(alice, channel, protocol):
    """routed:false is not the end: the user binds a queue, and the next retry delivers."""
    url = MGMT_URL if protocol == "http" else AMQP_URL
    name = f"hs-late-{uuid.uuid4().hex[:12]}"
    destination = _destination(
        alice.org, url=url, routing_key=name, protocol=protocol, retry_intervals=[0], retry_max_attempts=3
    )
    event, delivery = deliver(alice.org, destination, {"type": "order.created", "n": 1})
    assert delivery.status == "scheduled"
    assert "unroutable" in delivery.last_error

    channel.queue_declare(queue=name, auto_delete=True)
    channel.queue_bind(queue=name, exchange="amq.direct", routing_key=name)
    try:
        process_delivery(delivery.id)
        delivery.refresh_from_db()
        assert delivery.status == "succeeded", delivery.last_error
        properties, body = _read(channel, name)
        assert json.loads(body) == {"type": "order.created", "n": 1}
        assert properties.headers["hookstream-event-id"] == event.id
        assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 2
    finally:
        channel.queue_delete(queue=name)
        rabbitmq._drop(destination)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["http", "amqp"])
def test_a_missing_exchange_is_retried_by_policy_then_dead_lettered(alice, channel, protocol):
    url = MGMT_URL if protocol == "http" else AMQP_URL
    destination = _destination(
        alice.org,
        url=url,
        exchange=f"missing-{uuid.uuid4().hex[:8]}",
        protocol=protocol,
        retry_intervals=[0],
        retry_max_attempts=1,
    )
    assert_retried_by_policy_then_dead_lettered(alice.org, destination, "no exchange")
    rabbitmq._drop(destination)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["http", "amqp"])
def test_bad_credentials_are_retried_by_policy_then_dead_lettered(alice, channel, protocol):
    url = MGMT_URL if protocol == "http" else AMQP_URL
    destination = _destination(
        alice.org,
        url=url,
        password="wrong",
        routing_key="x",
        protocol=protocol,
        retry_intervals=[0],
        retry_max_attempts=2,
    )
    fragment = "refused the credentials" if protocol == "http" else "authentication failed"
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, fragment)
    if protocol == "http":
        assert [a.response_status for a in attempts] == [401, 401, 401]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "amqp://127.0.0.1:9"])
def test_a_broker_that_is_down_is_retried_then_dead_lettered(alice, url):
    protocol = "amqp" if url.startswith("amqp") else "http"
    destination = _destination(
        alice.org, url=url, routing_key="x", protocol=protocol, retry_intervals=[0], retry_max_attempts=1
    )
    assert_unreachable_is_retried_then_dead_lettered(alice.org, destination)


@pytest.mark.django_db
def test_amqp_reconnects_once_when_the_kept_connection_went_stale(alice, channel, queue):

    destination = _destination(alice.org, url=AMQP_URL, routing_key=queue, protocol="amqp")
    deliver(alice.org, destination)
    key, connection, _channel = rabbitmq._local.connections[str(destination.pk)]

    class Stale:
        is_open = True

        def basic_publish(self, **kwargs):
            raise StreamLostError("Transport indicated EOF")

        def close(self):
            pass

    rabbitmq._local.connections[str(destination.pk)] = (key, Stale(), Stale())
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "succeeded", delivery.last_error
    _read(channel, queue)
    _read(channel, queue)
    connection.close()
    rabbitmq._drop(destination)


@pytest.mark.django_db
def test_the_ssrf_guard_refuses_a_private_management_api_permanently(alice):

    destination = _destination(alice.org, routing_key="x")
    with override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False):
        _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "dead"
    assert "SSRF guard" in delivery.last_error
