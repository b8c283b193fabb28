"""Pub/Sub destinations against the official emulator on loopback (started per module)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
from google.cloud import pubsub_v1

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, DeliveryAttempt
from destinations.providers import pubsub as pubsub_provider
from tests.factories import make_delivery, make_event, make_source
from tests.providers.support import assert_retried_by_policy_then_dead_lettered, deliver, provider_destination
from tests.support import port_open, require_service

EMULATOR = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
PROJECT = "hookstream-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def emulator():
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    process = None
    if not host:
        available = os.path.exists(EMULATOR) and shutil.which("java") is not None
        require_service("Pub/Sub emulator", available, f"{EMULATOR} and java are needed")
        port = _free_port()
        process = subprocess.Popen(
            [EMULATOR, "--host=127.0.0.1", f"--port={port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        host = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port, 0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                require_service("Pub/Sub emulator", False, "it did not start")
            time.sleep(0.1)
    yield host
    if process is not None:
        # The emulator runs in its own session: stop the whole group (the launcher and java).
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def topic(emulator, monkeypatch):
    """A fresh topic and subscription; PUBSUB_EMULATOR_HOST set for the library."""

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    topic_id = f"t-{uuid.uuid4().hex[:10]}"
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(PROJECT, topic_id)
    sub_path = subscriber.subscription_path(PROJECT, f"s-{topic_id}")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=sub_path, topic=topic_path)
    yield topic_id, subscriber, sub_path
    subscriber.close()


def _destination(org, **config):
    fields = {k: config.pop(k) for k in ("retry_intervals", "retry_max_attempts", "timeout_ms") if k in config}
    return provider_destination(org, "pubsub", {"project_id": PROJECT, **config}, **fields)


def _pull(subscriber, sub_path, count=1):
    received = []
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        response = subscriber.pull(subscription=sub_path, max_messages=10, timeout=5)
        received.extend(m.message for m in response.received_messages)
        if response.received_messages:
            subscriber.acknowledge(subscription=sub_path, ack_ids=[m.ack_id for m in response.received_messages])
    return received


@pytest.mark.django_db
def test_it_publishes_the_body_with_attributes(alice, topic):
    topic_id, subscriber, sub_path = topic
    source = make_source(alice.org)
    destination = _destination(alice.org, topic_id=topic_id)
    event, delivery = deliver(alice.org, destination, {"type": "order.created", "amount": 9}, source=source)

    assert delivery.status == "succeeded", delivery.last_error
    (message,) = _pull(subscriber, sub_path)
    assert json.loads(message.data) == {"type": "order.created", "amount": 9}
    assert dict(message.attributes) == {
        "event_id": event.id,
        "source_id": str(source.pk),
        "destination_id": str(destination.pk),
    }
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert json.loads(attempt.response_body)["message_id"] == message.message_id


@pytest.mark.django_db
def test_the_endpoint_setting_reaches_the_emulator_and_the_client_is_reused(alice, topic, emulator, monkeypatch):
    topic_id, subscriber, sub_path = topic
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    destination = _destination(alice.org, topic_id=topic_id, endpoint=emulator)
    deliver(alice.org, destination)
    client = pubsub_provider._clients[str(destination.pk)][1]
    deliver(alice.org, destination)

    assert pubsub_provider._clients[str(destination.pk)][1] is client
    assert len(_pull(subscriber, sub_path, 2)) == 2
    pubsub_provider.forget(destination.pk)


@pytest.mark.django_db
def test_an_unknown_topic_is_retried_by_policy_then_dead_lettered(alice, topic):
    destination = _destination(
        alice.org, topic_id=f"missing-{uuid.uuid4().hex[:8]}", retry_intervals=[0], retry_max_attempts=2
    )
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "topic not found")
    assert [a.response_status for a in attempts] == [404, 404, 404]
    pubsub_provider.forget(destination.pk)


@pytest.mark.django_db
def test_a_topic_created_within_the_retry_window_gets_the_message(alice, topic, emulator):
    _topic_id, subscriber, _sub_path = topic
    topic_id = f"late-{uuid.uuid4().hex[:8]}"
    destination = _destination(alice.org, topic_id=topic_id, retry_intervals=[0], retry_max_attempts=3)
    event, delivery = deliver(alice.org, destination, {"type": "order.created"})
    assert delivery.status == "scheduled"
    assert "topic not found" in delivery.last_error

    publisher = pubsub_v1.PublisherClient()
    topic_path = publisher.topic_path(PROJECT, topic_id)
    sub_path = subscriber.subscription_path(PROJECT, f"s-{topic_id}")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=sub_path, topic=topic_path)
    process_delivery(delivery.id)
    delivery.refresh_from_db()

    assert delivery.status == "succeeded", delivery.last_error
    [received] = _pull(subscriber, sub_path)
    assert received.attributes["event_id"] == event.id
    pubsub_provider.forget(destination.pk)


@pytest.mark.django_db
def test_an_emulator_that_is_down_is_retried_then_dead_lettered(alice, monkeypatch):
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    destination = _destination(
        alice.org, topic_id="t", endpoint="127.0.0.1:9", timeout_ms=3000, retry_intervals=[0], retry_max_attempts=1
    )
    event = make_event(alice.org, {"type": "order.created"})
    delivery = make_delivery(event, destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "scheduled", delivery.last_error
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    assert DeadLetter.objects.get(delivery=delivery).reason == "retries_exhausted"
    pubsub_provider.forget(destination.pk)


@pytest.mark.django_db
def test_an_unusable_service_account_is_a_permanent_failure(alice, monkeypatch):
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    destination = _destination(alice.org, topic_id="t", service_account_json='{"type": "service_account"}')
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "dead"
    assert "unusable credentials" in delivery.last_error
    assert "service_account" not in json.dumps(DeliveryAttempt.objects.get(delivery=delivery).request_headers)
