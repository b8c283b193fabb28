"""The HTTP provider against real receivers on loopback (no mocks): headers, auth, both
signature modes verified the way a receiver would, redirects, time-outs, the SSRF guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from email.utils import formatdate

import pytest
from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, Delivery, DeliveryAttempt
from destinations.providers import OutboundMessage, get_provider
from destinations.providers.transport import parse_retry_after
from hookstream import outbound
from hookstream.ssrf import SSRFRefused, resolve_and_check
from tests.deliveries.receiver import Receiver
from tests.factories import make_delivery, make_destination, make_event
from tests.providers.support import deliver, provider_destination

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _http_destination(org, url, *, provider_config=None, signing_config=None, **fields):
    return provider_destination(org, "http", provider_config or {}, url=url, signing_config=signing_config, **fields)


@pytest.mark.django_db
def test_it_sends_every_header_with_bearer_auth_and_masks_the_token(alice, receiver):
    destination = _http_destination(
        alice.org,
        receiver.url,
        provider_config={"auth_type": "bearer", "token": "tok-secret-1234"},
        headers={"X-Custom": "yes"},
        method="PUT",
    )
    before = int(time.time())
    event, delivery = deliver(alice.org, destination)

    assert delivery.status == "succeeded"
    request = receiver.requests[0]
    assert request.method == "PUT" and request.path == "/hook"
    assert request.headers["Authorization"] == "Bearer tok-secret-1234"
    assert request.headers["X-Custom"] == "yes"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-hookstream-Event-Id"] == event.id
    assert request.headers["X-hookstream-Delivery-Attempt"] == "1"
    assert before <= int(request.headers["X-hookstream-Timestamp"]) <= int(time.time())
    assert request.body == bytes(event.body)

    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.request_headers["Authorization"] == "Bearer ****1234"
    assert "tok-secret" not in json.dumps(attempt.request_headers)
    assert attempt.request_method == "PUT" and attempt.request_url == receiver.url
    assert attempt.request_body_size == len(event.body)
    assert attempt.response_status == 200 and attempt.response_body == '{"ok":true}'


@pytest.mark.django_db
def test_it_sends_basic_and_api_key_auth(alice, receiver):
    basic = _http_destination(
        alice.org, receiver.url, provider_config={"auth_type": "basic", "username": "u", "password": "p@ss-9876"}
    )
    api_key = _http_destination(
        alice.org,
        receiver.url,
        provider_config={"auth_type": "api_key", "api_key_header": "X-Partner-Key", "api_key": "key-abcd-5555"},
    )
    deliver(alice.org, basic)
    deliver(alice.org, api_key)

    assert receiver.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"u:p@ss-9876").decode()
    assert receiver.requests[1].headers["X-Partner-Key"] == "key-abcd-5555"
    stored = DeliveryAttempt.objects.filter(destination=api_key).get()
    assert stored.request_headers["X-Partner-Key"] == "****5555"


@pytest.mark.django_db
def test_it_signs_with_hmac_over_timestamp_and_body(alice, receiver):
    destination = _http_destination(
        alice.org,
        receiver.url,
        signing_config={"secret": "s3cret", "algorithm": "sha256", "include_timestamp": True},
    )
    _event, delivery = deliver(alice.org, destination)

    request = receiver.requests[0]
    ts = request.headers["X-hookstream-Timestamp"]
    expected = hmac.new(b"s3cret", f"{ts}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-hookstream-Signature"] == f"sha256={expected}"
    assert delivery.status == "succeeded"


@pytest.mark.django_db
def test_it_signs_with_a_custom_header_and_prefix_without_timestamp(alice, receiver):
    destination = _http_destination(
        alice.org,
        receiver.url,
        signing_config={"secret": "k", "algorithm": "sha1", "header": "X-Sig", "prefix": ""},
    )
    deliver(alice.org, destination)

    request = receiver.requests[0]
    assert request.headers["X-Sig"] == hmac.new(b"k", request.body, hashlib.sha1).hexdigest()


@pytest.mark.django_db
def test_it_signs_standard_webhooks_with_the_event_id_stable_across_retries(alice, receiver):
    destination = _http_destination(
        alice.org, receiver.url, signing_config={"mode": "standard_webhooks", "secret": WHSEC}, retry_intervals=[0]
    )
    receiver.script.append((500, {}, b"boom"))
    event = make_event(alice.org, {"type": "user.created"})
    delivery = make_delivery(event, destination)
    process_delivery(delivery.id)
    process_delivery(delivery.id)

    first, second = receiver.wait_for(2)
    verifier = Webhook(WHSEC)
    for request in (first, second):
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["webhook-id"] == event.id
        verifier.verify(request.body, headers)  # raises when the signature is wrong
    assert [first.headers["X-hookstream-Delivery-Attempt"], second.headers["X-hookstream-Delivery-Attempt"]] == [
        "1",
        "2",
    ]
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


@pytest.mark.django_db
def test_it_shapes_the_body_with_the_destination_template(alice, receiver):
    destination = _http_destination(alice.org, receiver.url, template="slack", name="Alerts")
    deliver(alice.org, destination, {"type": "invoice.paid"})

    body = json.loads(receiver.requests[0].body)
    assert isinstance(body.get("text"), str) and body["text"]


@pytest.mark.django_db
def test_it_sends_the_transformed_payload_as_json(alice, receiver):
    destination = _http_destination(alice.org, receiver.url)
    delivery = make_delivery(make_event(alice.org, {"a": 1}), destination, transformed_payload={"b": [1, 2]})
    process_delivery(delivery.id)

    assert json.loads(receiver.requests[0].body) == {"b": [1, 2]}
    assert receiver.requests[0].headers["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_it_does_not_follow_redirects_and_retries_them(alice, receiver):
    receiver.default = (302, {"Location": receiver.url + "/elsewhere"}, b"")
    destination = _http_destination(alice.org, receiver.url, retry_intervals=[60])
    _event, delivery = deliver(alice.org, destination)

    assert len(receiver.requests) == 1
    assert delivery.status == "scheduled"
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status == "failed" and attempt.response_status == 302
    assert "redirects are not followed" in attempt.error


@pytest.mark.django_db
def test_it_counts_only_2xx_as_success(alice, receiver):
    receiver.script.extend([(204, {}, b""), (404, {}, b"nope"), (500, {}, b"err")])
    destination = _http_destination(alice.org, receiver.url, retry_intervals=[60])
    outcomes = [deliver(alice.org, destination)[1].status for _ in range(3)]

    assert outcomes == ["succeeded", "scheduled", "scheduled"]


@pytest.mark.django_db
def test_it_times_out_and_schedules_a_retry(alice, receiver):
    receiver.delay = 1.0
    destination = _http_destination(alice.org, receiver.url, timeout_ms=200, retry_intervals=[60])
    started = time.monotonic()
    _event, delivery = deliver(alice.org, destination)

    assert time.monotonic() - started < 0.9
    assert delivery.status == "scheduled"
    assert "timed out" in DeliveryAttempt.objects.get(delivery=delivery).error


@pytest.mark.django_db
@override_settings(HOOKSTREAM_RESPONSE_BODY_LIMIT=10)
def test_it_truncates_the_stored_response_body(alice, receiver):
    receiver.default = (200, {}, b"x" * 5000)
    destination = _http_destination(alice.org, receiver.url)
    _event, delivery = deliver(alice.org, destination)

    assert DeliveryAttempt.objects.get(delivery=delivery).response_body == "x" * 10


def test_it_parses_retry_after_seconds_and_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert 25 <= parse_retry_after(formatdate(time.time() + 30, usegmt=True)) <= 31


@pytest.mark.django_db
def test_it_keeps_the_host_name_while_connecting_to_the_pinned_address(alice, receiver):
    port = receiver.server.server_address[1]
    destination = _http_destination(alice.org, f"http://localhost:{port}/hook")
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "succeeded"
    assert receiver.requests[0].headers["Host"] == f"localhost:{port}"


@pytest.mark.django_db
def test_it_reuses_one_keep_alive_connection(alice, receiver):
    destination = _http_destination(alice.org, receiver.url)
    for _ in range(3):
        deliver(alice.org, destination)
    # Every request came over the same TCP connection (the receiver saw one client port).
    assert len(receiver.requests) == 3
    adapter = outbound.session().get_adapter(receiver.url)
    pools = [p for key, p in adapter._pools.items() if key[2] == receiver.server.server_address[1]]
    assert len(pools) == 1 and pools[0].num_connections == 1


@pytest.mark.django_db
@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False)
@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "IPv4-mapped"),
        ("http://localhost:{port}/hook", "loopback"),
        ("http://127.0.0.1:{port}/hook", "loopback"),
    ],
)
def test_it_refuses_private_targets_as_permanent_failures(alice, receiver, url, reason):
    port = receiver.server.server_address[1]
    destination = make_destination(alice.org, url=url.format(port=port))
    _event, delivery = deliver(alice.org, destination)

    assert receiver.requests == []
    assert delivery.status == "dead"
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert "SSRF guard" in attempt.error and reason in attempt.error
    assert attempt.is_dlq and attempt.dlq_at is not None
    assert DeadLetter.objects.get(delivery=delivery).reason == "permanent_failure"
    assert Delivery.objects.get(pk=delivery.pk).attempt_count == 1


@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False)
def test_it_checks_every_resolved_address_of_a_name():
    with pytest.raises(SSRFRefused, match="localhost resolves to"):
        resolve_and_check("localhost", 80)
    with pytest.raises(SSRFRefused, match="cloud metadata"):
        resolve_and_check("fd00:ec2::254", 80)


def test_it_sends_nothing_for_a_message_without_a_reachable_host():
    provider = get_provider("http")()

    class Target:
        url = "http://nonexistent.invalid/hook"
        method = "POST"
        headers = {}
        provider_config = {}
        signing_config = None
        template = ""
        name = "x"
        timeout_ms = 1000

    message = OutboundMessage(
        event_id="evt_x",
        destination_id="dst_x",
        attempt_number=1,
        body=b"{}",
        content_type="application/json",
        payload={},
    )
    outcome = provider.send(Target(), message)
    assert not outcome.ok and outcome.retryable and "resolve" in outcome.error
