"""Issue 12, findings 1 and 4, and the egress policy: every provider type is refused before it
connects to a target that is not globally routable, whatever transport it uses (urllib3, boto3,
websocket-client); literal targets are refused at validation with a 400 naming the field; the
operator's allow-list opens listed internal targets and never the metadata service."""

from __future__ import annotations

import pytest

from deliveries.models import DeliveryAttempt
from destinations.providers import aws
from hookstream.ssrf import SSRFRefused, address_error, resolve_and_check
from tests.deliveries.receiver import Receiver
from tests.destinations.helpers import assert_error_body, post_json
from tests.providers.support import deliver, provider_destination
from tests.security.egress_support import (
    TARGET_FIELD,
    TYPES,
    Listener,
    stored_destination,
    target_config,
)

NON_LOOPBACK = ["100.64.0.1", "169.254.169.254", "10.0.0.5", "2002:a00:1::", "64:ff9b::a00:1", "192.168.1.20"]


@pytest.fixture
def guard_on(settings):
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = False
    settings.HOOKSTREAM_EGRESS_ALLOW = []
    aws.clear_clients()
    yield settings
    aws.clear_clients()


@pytest.fixture
def listener():
    port = Listener()
    yield port
    port.close()


@pytest.mark.parametrize("type_", TYPES)
def test_every_type_is_refused_before_connecting_to_loopback(alice, guard_on, listener, type_):
    destination = stored_destination(alice.org, type_, "127.0.0.1", listener.port)

    _event, delivery = deliver(alice.org, destination)

    assert not listener.reached(), f"{type_} connected to the loopback listener"
    assert delivery.status == "dead"
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert "SSRF guard" in attempt.error and "loopback" in attempt.error


@pytest.mark.parametrize("type_", TYPES)
def test_every_type_refuses_a_literal_loopback_target_at_validation(api, guard_on, listener, type_):
    url, config = target_config(type_, "127.0.0.1", listener.port)
    body = {"name": f"To {type_}", "type": type_, "provider_config": config, **({"url": url} if url else {})}

    response = post_json(api, "/v1/destinations", body)

    assert_error_body(response, 400, TARGET_FIELD[type_])
    assert "loopback" in response.json()["details"][TARGET_FIELD[type_]][0]


@pytest.mark.parametrize("type_", ["sqs", "s3", "eventbridge"])
@pytest.mark.parametrize("address", NON_LOOPBACK)
def test_aws_endpoint_urls_to_internal_addresses_are_refused_before_any_connection(
    alice, api, guard_on, forbid_connections, type_, address
):
    forbid_connections.add(address)
    _url, config = target_config(type_, address, 80)
    config["queue_url"] = config.get("queue_url", "").replace(f"[{address}]:80", "sqs.us-east-1.amazonaws.com")
    config = {k: v for k, v in config.items() if v}

    response = post_json(api, "/v1/destinations", {"name": "AWS", "type": type_, "provider_config": config})
    assert_error_body(response, 400, "provider_config.endpoint_url")

    _event, delivery = deliver(alice.org, stored_destination(alice.org, type_, address, 80))
    assert delivery.status == "dead" and "SSRF guard" in delivery.last_error


@pytest.mark.parametrize("address", NON_LOOPBACK)
def test_http_kafka_rabbitmq_and_websocket_targets_to_internal_addresses_are_refused(
    alice, guard_on, forbid_connections, address
):
    forbid_connections.add(address)
    for type_ in ("http", "kafka", "rabbitmq", "websocket"):
        _event, delivery = deliver(alice.org, stored_destination(alice.org, type_, address, 80))
        assert delivery.status == "dead" and "SSRF guard" in delivery.last_error, (type_, delivery.last_error)


@pytest.mark.parametrize(
    "address, reason",
    [
        ("100.64.0.1", "shared"),
        ("2002:a00:1::", "6to4 address of 10.0.0.1"),
        ("64:ff9b::a00:1", "NAT64 address of 10.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("::ffff:10.0.0.5", "IPv4-mapped"),
        ("fd00::1", "private"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_the_policy_refuses_what_is_not_globally_routable(guard_on, address, reason):
    error = address_error(address)
    assert error is not None and reason in error


def test_public_addresses_and_6to4_of_public_addresses_pass(guard_on):
    assert address_error("93.184.215.14") is None
    assert address_error("2606:2800:21f:cb07:6820:80da:af6b:8b2c") is None
    assert address_error("2002:5db8:d70e::1") is None  # 6to4 of 93.184.215.14


def test_metadata_is_refused_even_with_private_networks_allowed(api, settings, forbid_connections):
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = True
    settings.HOOKSTREAM_EGRESS_ALLOW = ["169.254.0.0/16", "metadata.google.internal"]
    forbid_connections.add("169.254.169.254")

    for url in ("http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/computeMetadata/v1/"):
        response = post_json(api, "/v1/destinations", {"name": "M", "type": "http", "url": url})
        assert_error_body(response, 400, "url")
        assert "metadata" in response.json()["details"]["url"][0]
    with pytest.raises(SSRFRefused, match="metadata"):
        resolve_and_check("metadata.google.internal", 80)
    with pytest.raises(SSRFRefused, match="metadata"):
        resolve_and_check("::ffff:169.254.169.254", 80)


def test_the_allow_list_lets_a_delivery_through_to_a_listed_internal_target(alice, guard_on):
    receiver = Receiver()
    try:
        destination = stored_destination(alice.org, "http", "127.0.0.1", receiver.server.server_address[1])
        _event, refused = deliver(alice.org, destination)
        assert refused.status == "dead" and receiver.requests == []

        guard_on.HOOKSTREAM_EGRESS_ALLOW = ["127.0.0.1/32"]
        _event, delivered = deliver(alice.org, destination)
        assert delivered.status == "succeeded"
        assert len(receiver.requests) == 1
    finally:
        receiver.close()


def test_the_allow_list_takes_host_names_too(alice, api, guard_on):
    receiver = Receiver()
    try:
        url = f"http://localhost:{receiver.server.server_address[1]}/hook"
        assert_error_body(post_json(api, "/v1/destinations", {"name": "L", "type": "http", "url": url}), 400, "url")

        guard_on.HOOKSTREAM_EGRESS_ALLOW = ["localhost"]
        created = post_json(api, "/v1/destinations", {"name": "L", "type": "http", "url": url})
        assert created.status_code == 201, created.json()
        _event, delivery = deliver(alice.org, provider_destination(alice.org, "http", {}, url=url))
        assert delivery.status == "succeeded" and len(receiver.requests) == 1
    finally:
        receiver.close()
