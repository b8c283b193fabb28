"""A templated destination made through the API, sent through the real HTTP provider to a
real receiver on loopback: the body shape, the decrypted secrets and the signature arrive."""

import hashlib
import hmac
import json

import pytest
from django.test import override_settings

from deliveries.engine import outbound_message, provider_for
from destinations.models import Destination
from tests.deliveries.receiver import Receiver
from tests.destinations.helpers import post_json
from tests.factories import make_delivery, make_event


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=True)
def test_it_delivers_a_pagerduty_event_with_the_decrypted_routing_key_and_signature(api, alice, receiver):
    created = post_json(
        api,
        "/v1/destinations",
        {
            "template": "pagerduty",
            "name": "On call",
            "url": receiver.url,
            "provider_config": {"routing_key": "R0UTING-KEY-1234"},
            "signing_config": {"secret": "sign-me-please"},
        },
    )
    assert created.status_code == 201, created.content
    destination = Destination.objects.get(pk=created.json()["id"])
    event = make_event(alice.org, {"type": "payment.failed", "severity": "critical", "amount": 1200})
    delivery = make_delivery(event, destination)

    provider, plain = provider_for(destination)
    outcome = provider.send(plain, outbound_message(delivery, 1))

    assert outcome.ok, outcome.error
    (request,) = receiver.wait_for(1)
    body = json.loads(request.body)
    assert body["routing_key"] == "R0UTING-KEY-1234"
    assert body["event_action"] == "trigger" and body["dedup_key"] == event.id
    assert body["payload"]["severity"] == "critical" and body["payload"]["source"] == "On call"
    assert body["payload"]["custom_details"]["amount"] == 1200
    expected = hmac.new(b"sign-me-please", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-hookstream-Signature"] == f"sha256={expected}"
    # The secret never shows in what the attempt records.
    assert "R0UTING-KEY-1234" not in json.dumps(outcome.request_headers)


@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=True)
def test_it_delivers_a_slack_text_message(api, alice, receiver):
    created = post_json(api, "/v1/destinations", {"template": "slack", "name": "Alerts", "url": receiver.url}).json()
    destination = Destination.objects.get(pk=created["id"])
    event = make_event(alice.org, {"type": "order.created", "id": 7})

    provider, plain = provider_for(destination)
    outcome = provider.send(plain, outbound_message(make_delivery(event, destination), 1))

    assert outcome.ok, outcome.error
    (request,) = receiver.wait_for(1)
    body = json.loads(request.body)
    assert set(body) == {"text"} and "order.created" in body["text"] and event.id in body["text"]
    assert request.headers["Content-Type"].startswith("application/json")
