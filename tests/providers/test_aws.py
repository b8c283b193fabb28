"""The AWS providers (sqs, s3, eventbridge) against a real moto server on loopback (no
mocks): delivered and observed at the counterpart; a missing queue, bucket or bus and access
denied retried by the destination's policy then dead-lettered, as a counterpart that is down
is; oversized messages dead-lettered at once; FIFO attributes, both S3
formats, EventBridge partial failures, and the circuit breaker of one destination."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests
from botocore.config import Config
from moto.server import ThreadedMotoServer

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, DeliveryAttempt
from destinations.models import CircuitState
from destinations.providers import aws
from destinations.providers.base import OutboundMessage
from destinations.providers.eventbridge import classify_put_events
from destinations.providers.s3 import object_key
from tests.factories import make_delivery, make_event
from tests.providers.support import (
    assert_retried_by_policy_then_dead_lettered,
    deliver,
    only_attempt,
    provider_destination,
)

REGION = "us-east-1"
KEYS = {"access_key_id": "AKIAEXAMPLEKEY000001", "secret_access_key": "moto-secret-key"}


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def moto(moto_url):
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    aws.clear_clients()
    yield moto_url
    aws.clear_clients()


def _client(service, endpoint):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
        config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
    )


class _AwsErrorServer:
    """An AWS JSON-protocol endpoint on loopback that refuses every call with one error, as
    SQS does for a key IAM does not allow (moto does not enforce IAM by default)."""

    def __init__(self, status: int, code: str, message: str):
        self.requests = 0
        server = self
        body = json.dumps({"__type": code, "message": message}).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("x-amzn-query-error", f"{code};Sender")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _destination(org, type_, config, **fields):
    fields.setdefault("timeout_ms", 3000)
    return provider_destination(org, type_, {"region": REGION, **KEYS, **config}, **fields)


def _assert_permanent_dlq(delivery, fragment):
    assert delivery.status == "dead"
    attempt = only_attempt(delivery)
    assert attempt.status == "failed"
    assert fragment in attempt.error
    assert attempt.is_dlq
    assert DeadLetter.objects.get(delivery_id=delivery.pk).reason == "permanent_failure"


def _assert_retried_then_dlq(org, destination, method):
    event = make_event(org, {"type": "down"})
    delivery = make_delivery(event, destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "scheduled"
    first = only_attempt(delivery)
    assert first.status == "failed" and first.request_method == method
    assert "connect" in first.error.lower()
    assert first.next_retry_at is not None and not first.is_dlq

    process_delivery(delivery.id)  # due at once: retry_intervals [0]
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    attempts = list(DeliveryAttempt.objects.filter(delivery_id=delivery.pk).order_by("attempt_number"))
    assert [a.attempt_number for a in attempts] == [1, 2]
    assert attempts[1].is_dlq
    assert DeadLetter.objects.get(delivery_id=delivery.pk).reason == "retries_exhausted"


# --- SQS ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sqs_delivers_with_event_attributes_and_secret_encrypted_at_rest(alice, moto):
    sqs = _client("sqs", moto)
    queue_url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    destination = _destination(alice.org, "sqs", {"queue_url": queue_url, "endpoint_url": moto})
    assert destination.provider_config["secret_access_key"] != KEYS["secret_access_key"]

    event, delivery = deliver(alice.org, destination, {"type": "order.created", "amount": 42})

    assert delivery.status == "succeeded"
    attempt = only_attempt(delivery)
    assert attempt.request_method == "SendMessage" and attempt.request_url == queue_url
    assert attempt.response_status == 200 and "MessageId=" in attempt.response_body
    messages = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=0)["Messages"]
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == {"type": "order.created", "amount": 42}
    attrs = messages[0]["MessageAttributes"]
    assert attrs["hookstream-event-id"]["StringValue"] == event.id
    assert attrs["hookstream-destination-id"]["StringValue"] == destination.id
    assert attrs["attempt"]["StringValue"] == "1"


@pytest.mark.django_db
def test_sqs_fifo_queue_gets_group_and_deduplication_ids(alice, moto):
    sqs = _client("sqs", moto)
    queue_url = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    grouped = _destination(
        alice.org, "sqs", {"queue_url": queue_url, "endpoint_url": moto, "message_group_id": "tenant-7"}
    )
    event, delivery = deliver(alice.org, grouped)
    assert delivery.status == "succeeded"
    message = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"], MessageAttributeNames=["All"])[
        "Messages"
    ][0]
    assert message["Attributes"]["MessageGroupId"] == "tenant-7"
    assert message["Attributes"]["MessageDeduplicationId"] == event.id
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    by_event = _destination(alice.org, "sqs", {"queue_url": queue_url, "endpoint_url": moto})
    event2, delivery2 = deliver(alice.org, by_event)
    assert delivery2.status == "succeeded"
    message = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"])["Messages"][0]
    assert message["Attributes"]["MessageGroupId"] == event2.id
    assert message["Attributes"]["MessageDeduplicationId"] == event2.id


@pytest.mark.django_db
def test_sqs_missing_queue_is_retried_by_policy_then_dead_lettered(alice, moto):
    missing = f"{moto}/123456789012/no-such-queue-{uuid.uuid4().hex[:8]}"
    destination = _destination(
        alice.org, "sqs", {"queue_url": missing, "endpoint_url": moto}, retry_intervals=[0], retry_max_attempts=2
    )
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "NonExistentQueue")
    assert {a.response_status for a in attempts} == {400}


@pytest.mark.django_db
def test_sqs_queue_created_within_the_retry_window_gets_the_message(alice, moto):
    name = f"late-{uuid.uuid4().hex[:8]}"
    queue_url = f"{moto}/123456789012/{name}"
    destination = _destination(
        alice.org, "sqs", {"queue_url": queue_url, "endpoint_url": moto}, retry_intervals=[0], retry_max_attempts=3
    )
    event, delivery = deliver(alice.org, destination, {"type": "order.created"})
    assert delivery.status == "scheduled"
    assert "NonExistentQueue" in delivery.last_error

    sqs = _client("sqs", moto)
    assert sqs.create_queue(QueueName=name)["QueueUrl"].endswith(f"/{name}")
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded", delivery.last_error
    [message] = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageAttributes"]["hookstream-event-id"]["StringValue"] == event.id


@pytest.mark.django_db
def test_sqs_access_denied_is_retried_by_policy_then_dead_lettered(alice):
    """AWS answers 403 AccessDenied (a loopback stand-in for IAM refusing the key)."""
    server = _AwsErrorServer(403, "AccessDenied", "not authorized to perform sqs:SendMessage")
    try:
        queue_url = f"{server.url}/123456789012/orders"
        destination = _destination(
            alice.org,
            "sqs",
            {"queue_url": queue_url, "endpoint_url": server.url},
            retry_intervals=[0],
            retry_max_attempts=1,
        )
        attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "AccessDenied")
        assert [a.response_status for a in attempts] == [403, 403]
        assert server.requests == 2
    finally:
        server.close()


@pytest.mark.django_db
def test_sqs_oversized_message_is_a_permanent_failure(alice, moto):
    sqs = _client("sqs", moto)
    queue_url = sqs.create_queue(QueueName="small")["QueueUrl"]
    destination = _destination(
        alice.org, "sqs", {"queue_url": queue_url, "endpoint_url": moto, "max_message_bytes": 10}
    )
    _, delivery = deliver(alice.org, destination, {"type": "order.created", "padding": "x" * 50})
    _assert_permanent_dlq(delivery, "max_message_bytes")
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)


@pytest.mark.django_db
def test_sqs_counterpart_down_is_retried_then_dead_lettered(alice, moto):
    down = _closed_port_url()
    destination = _destination(
        alice.org,
        "sqs",
        {"queue_url": f"{down}/123456789012/orders", "endpoint_url": down},
        retry_intervals=[0],
        retry_max_attempts=1,
    )
    _assert_retried_then_dlq(alice.org, destination, "SendMessage")


@pytest.mark.django_db
def test_sqs_circuit_opens_for_the_failing_destination_while_another_keeps_delivering(alice, moto):
    sqs = _client("sqs", moto)
    queue_url = sqs.create_queue(QueueName="healthy")["QueueUrl"]
    healthy = _destination(alice.org, "sqs", {"queue_url": queue_url, "endpoint_url": moto})
    down = _closed_port_url()
    failing = _destination(
        alice.org,
        "sqs",
        {"queue_url": f"{down}/123456789012/orders", "endpoint_url": down},
        circuit_breaker_threshold=2,
        circuit_breaker_reset_ms=600000,
        retry_max_attempts=1,
        retry_intervals=[3600],
    )

    for _ in range(2):
        _, failed = deliver(alice.org, failing)
        assert failed.status == "scheduled"
        _, ok = deliver(alice.org, healthy)
        assert ok.status == "succeeded"
    assert CircuitState.objects.get(destination=failing).state == "open"

    _, held = deliver(alice.org, failing)
    assert held.status == "held"
    assert not DeliveryAttempt.objects.filter(delivery_id=held.pk).exists()
    _, ok = deliver(alice.org, healthy)
    assert ok.status == "succeeded"
    assert CircuitState.objects.get(destination=healthy).state == "closed"
    received = 0
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        received += len(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert received == 3


# --- S3 ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_s3_json_format_writes_the_event_document_under_a_dated_key(alice, moto):
    s3 = _client("s3", moto)
    s3.create_bucket(Bucket="archive")
    destination = _destination(alice.org, "s3", {"bucket": "archive", "prefix": "hooks/", "endpoint_url": moto})
    received_at = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    event, delivery = deliver(
        alice.org, destination, {"type": "order.created", "id": 9}, received_at=received_at, headers={"X-A": "1"}
    )

    assert delivery.status == "succeeded"
    key = f"hooks/2026/03/04/{event.id}.json"
    attempt = only_attempt(delivery)
    assert attempt.request_url == f"s3://archive/{key}" and attempt.request_method == "PutObject"
    assert "ETag=" in attempt.response_body
    obj = s3.get_object(Bucket="archive", Key=key)
    assert obj["Metadata"]["hookstream-event-id"] == event.id
    document = json.loads(obj["Body"].read())
    assert document["event_id"] == event.id
    assert document["body"] == {"type": "order.created", "id": 9}
    assert document["headers"] == {"X-A": "1"}
    assert document["method"] == event.method
    assert document["source_id"] is None
    assert document["received_at"].startswith("2026-03-04T23:30:00")


@pytest.mark.django_db
def test_s3_json_format_keeps_a_non_json_body_as_text_and_raw_writes_bytes(alice, moto):
    s3 = _client("s3", moto)
    s3.create_bucket(Bucket="archive")
    as_json = _destination(alice.org, "s3", {"bucket": "archive", "endpoint_url": moto})
    event, delivery = deliver(alice.org, as_json, body=b"a=1&b=2", content_type="text/plain")
    assert delivery.status == "succeeded"
    day = event.received_at.astimezone(UTC)
    key = f"{day:%Y/%m/%d}/{event.id}.json"
    assert json.loads(s3.get_object(Bucket="archive", Key=key)["Body"].read())["body"] == "a=1&b=2"

    raw = _destination(alice.org, "s3", {"bucket": "archive", "prefix": "raw/", "format": "raw", "endpoint_url": moto})
    body = b'{"type":"raw.bytes", "spacing" : true}'
    event, delivery = deliver(alice.org, raw, body=body)
    assert delivery.status == "succeeded"
    day = event.received_at.astimezone(UTC)
    obj = s3.get_object(Bucket="archive", Key=f"raw/{day:%Y/%m/%d}/{event.id}.json")
    assert obj["Body"].read() == body
    assert obj["Metadata"]["hookstream-event-id"] == event.id


@pytest.mark.django_db
def test_s3_missing_bucket_is_retried_by_policy_then_dead_lettered(alice, moto):
    destination = _destination(
        alice.org, "s3", {"bucket": "no-such-bucket", "endpoint_url": moto}, retry_intervals=[0], retry_max_attempts=1
    )
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "NoSuchBucket")
    assert {a.response_status for a in attempts} == {404}


@pytest.mark.django_db
def test_s3_counterpart_down_is_retried_then_dead_lettered(alice, moto):
    destination = _destination(
        alice.org,
        "s3",
        {"bucket": "archive", "endpoint_url": _closed_port_url()},
        retry_intervals=[0],
        retry_max_attempts=1,
    )
    _assert_retried_then_dlq(alice.org, destination, "PutObject")


# --- EventBridge -------------------------------------------------------------------------------


def _bus_with_queue(moto, bus_name="orders-bus"):
    events = _client("events", moto)
    sqs = _client("sqs", moto)
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    queue_url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName=bus_name, EventPattern=json.dumps({"source": ["hookstream.test"]}))
    events.put_targets(Rule="tap", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": queue_arn}])
    return bus_arn, sqs, queue_url


@pytest.mark.django_db
def test_eventbridge_delivers_to_the_bus_and_a_rule_forwards_it(alice, moto):
    bus_arn, sqs, queue_url = _bus_with_queue(moto)
    destination = _destination(
        alice.org,
        "eventbridge",
        {"event_bus_arn": bus_arn, "source": "hookstream.test", "detail_type": "order", "endpoint_url": moto},
    )
    event, delivery = deliver(alice.org, destination, {"type": "order.created", "event": "x"})

    assert delivery.status == "succeeded"
    attempt = only_attempt(delivery)
    assert attempt.request_method == "PutEvents" and attempt.request_url == bus_arn
    assert "EventId=" in attempt.response_body
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    forwarded = json.loads(messages[0]["Body"])
    assert forwarded["source"] == "hookstream.test" and forwarded["detail-type"] == "order"
    assert forwarded["detail"] == {"type": "order.created", "event": "x"}


@pytest.mark.django_db
def test_eventbridge_wraps_a_non_json_body(alice, moto):
    bus_arn, sqs, queue_url = _bus_with_queue(moto)
    destination = _destination(
        alice.org, "eventbridge", {"event_bus_arn": bus_arn, "source": "hookstream.test", "endpoint_url": moto}
    )
    _, delivery = deliver(alice.org, destination, body=b"plain text", content_type="text/plain")
    assert delivery.status == "succeeded"
    forwarded = json.loads(sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"])
    assert forwarded["detail"] == {"body": "plain text"}


@pytest.mark.django_db
def test_eventbridge_unknown_bus_is_retried_by_policy_then_dead_lettered(alice, moto):
    destination = _destination(
        alice.org,
        "eventbridge",
        {"event_bus_arn": "no-such-bus", "endpoint_url": moto},
        retry_intervals=[0],
        retry_max_attempts=2,
    )
    assert_retried_by_policy_then_dead_lettered(alice.org, destination, "ResourceNotFoundException")


@pytest.mark.django_db
def test_eventbridge_oversized_entry_is_a_permanent_failure(alice, moto):
    destination = _destination(alice.org, "eventbridge", {"endpoint_url": moto, "max_entry_bytes": 40})
    _, delivery = deliver(alice.org, destination, {"type": "order.created", "padding": "x" * 50})
    _assert_permanent_dlq(delivery, "max_entry_bytes")


@pytest.mark.django_db
def test_eventbridge_counterpart_down_is_retried_then_dead_lettered(alice, moto):
    destination = _destination(
        alice.org, "eventbridge", {"endpoint_url": _closed_port_url()}, retry_intervals=[0], retry_max_attempts=1
    )
    _assert_retried_then_dlq(alice.org, destination, "PutEvents")


@pytest.mark.parametrize(
    ("code", "retryable"),
    [("InternalFailure", True), ("ThrottlingException", True), ("AccessDeniedException", True), ("X", True)],
)
def test_eventbridge_failed_entries_are_classified(code, retryable):
    response = {
        "ResponseMetadata": {"HTTPStatusCode": 200},
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": code, "ErrorMessage": "nope"}],
    }
    outcome = classify_put_events(response, {"request_url": "default", "request_method": "PutEvents"})
    assert not outcome.ok
    assert outcome.retryable is retryable
    assert code in outcome.error and outcome.response_status == 200


# --- shared ------------------------------------------------------------------------------------


def test_clients_are_cached_per_credentials_with_timeouts_and_no_retries():
    aws.clear_clients()
    config = {"region": REGION, **KEYS, "endpoint_url": "http://127.0.0.1:1"}
    first = aws.client("sqs", config, 2500)
    assert aws.client("sqs", dict(config), 2500) is first
    assert aws.client("sqs", {**config, "secret_access_key": "rotated"}, 2500) is not first
    assert aws.client("s3", config, 2500) is not first
    assert first.meta.config.read_timeout == 2.5
    assert first.meta.config.connect_timeout == 2.5
    assert first.meta.config.retries["total_max_attempts"] == 1
    aws.clear_clients()


def test_s3_key_uses_the_received_day_in_utc():
    message = OutboundMessage(
        event_id="evt_1",
        destination_id="dst_1",
        attempt_number=1,
        body=b"{}",
        content_type="application/json",
        payload={},
        received_at=datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    )
    assert object_key("p/", message) == "p/2026/12/31/evt_1.json"


def test_the_test_endpoint_sends_a_sample_event_to_an_sqs_queue(alice, moto):
    sqs = _client("sqs", moto)
    queue_url = sqs.create_queue(QueueName="test-send")["QueueUrl"]
    destination = _destination(alice.org, "sqs", {"queue_url": queue_url, "endpoint_url": moto})

    response = alice.client().post(f"/v1/destinations/{destination.pk}/test")
    assert response.status_code == 202, response.content
    process_delivery(response.json()["delivery_id"])  # what the worker does with the enqueued task

    messages = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"]).get("Messages", [])
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["type"] == "hookstream.test"
