"""Issue 12, findings 3 and 13, and the credential masks: a WebSocket handshake never follows a
redirect; CR/LF and other control characters are refused in every field that becomes a header
or a request line; credential headers come back from the API masked."""

from __future__ import annotations

import pytest

from deliveries.models import DeliveryAttempt
from destinations.models import Destination
from hookstream import crypto
from tests.deliveries.receiver import Receiver
from tests.destinations.helpers import assert_error_body, patch_json, post_json
from tests.providers.support import deliver, provider_destination
from tests.security.egress_support import Listener, Server, read_request_head, stored_destination


def _redirecting_to(location: str):
    def handler(conn):
        read_request_head(conn)
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    return handler


@pytest.mark.parametrize("private_networks", [False, True])
def test_a_websocket_handshake_does_not_follow_a_redirect(alice, settings, private_networks):
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = private_networks
    # The first hop is an allowed internal target; the redirect points at one that is not.
    settings.HOOKSTREAM_EGRESS_ALLOW = ["127.0.0.2/32"]
    listener = Listener("127.0.0.1")
    server = Server(_redirecting_to(f"ws://127.0.0.1:{listener.port}/feed"), host="127.0.0.2")
    try:
        destination = stored_destination(alice.org, "websocket", "127.0.0.2", server.port)
        _event, delivery = deliver(alice.org, destination)

        assert server.connections == 1
        assert not listener.reached(), "the redirect was followed"
        assert delivery.status != "succeeded"
        assert "redirects are not followed" in delivery.last_error
    finally:
        server.close()
        listener.close()


@pytest.mark.parametrize(
    "body, field",
    [
        (
            {
                "type": "websocket",
                "url": "wss://push.example.com/feed",
                "provider_config": {"channel_name": "c", "headers": {"X-Tenant": "a\r\nX-Injected: 1"}},
            },
            "provider_config.headers",
        ),
        (
            {
                "type": "websocket",
                "url": "wss://push.example.com/feed\r\nX-Injected: 1",
                "provider_config": {"channel_name": "c"},
            },
            "url",
        ),
        (
            {"type": "websocket", "provider_config": {"channel_name": "c", "url": "ws://push.example.com/\nX: 1"}},
            "provider_config.url",
        ),
        (
            {"type": "http", "url": "https://hooks.example.com/in\r\nX-Injected: 1"},
            "url",
        ),
        (
            {
                "type": "http",
                "url": "https://hooks.example.com/in",
                "provider_config": {"auth_type": "bearer", "token": "abc\r\nX-Injected: 1"},
            },
            "provider_config.token",
        ),
        (
            {
                "type": "http",
                "url": "https://hooks.example.com/in",
                "provider_config": {"auth_type": "api_key", "api_key": "k", "api_key_header": "X-Key\r\nX-Injected"},
            },
            "provider_config.api_key_header",
        ),
        (
            {
                "type": "http",
                "url": "https://hooks.example.com/in",
                "provider_config": {"auth_type": "api_key", "api_key": "k\n1"},
            },
            "provider_config.api_key",
        ),
        (
            {
                "type": "kafka",
                "provider_config": {"rest_url": "https://kafka.example.com\r\n", "cluster_id": "c", "topic": "t"},
            },
            "provider_config.rest_url",
        ),
        (
            {"type": "http", "url": "https://hooks.example.com/in", "headers": {"X-Tenant": "a\x0bb"}},
            "headers",
        ),
        (
            {
                "type": "http",
                "url": "https://hooks.example.com/in",
                "signing_config": {"secret": "s", "header": "X-Sig\r\nX-Injected"},
            },
            "signing_config.header",
        ),
    ],
)
def test_line_breaks_are_refused_in_every_field_that_becomes_a_header(api, body, field):
    response = post_json(api, "/v1/destinations", {"name": "Injected", **body})

    assert_error_body(response, 400, field)


def test_a_stored_header_with_a_line_break_never_reaches_the_receiver(alice):
    server = Server(read_request_head)
    try:
        destination = stored_destination(alice.org, "websocket", "127.0.0.1", server.port)
        config = crypto.decrypt_fields(destination.provider_config, ())
        config["headers"] = {"X-Tenant": "a\r\nX-Injected: 1"}
        Destination.objects.filter(pk=destination.pk).update(provider_config=config)
        destination.refresh_from_db()

        _event, delivery = deliver(alice.org, destination)

        assert server.connections == 0
        assert delivery.status == "dead" and "invalid header" in delivery.last_error
    finally:
        server.close()


@pytest.mark.parametrize(
    "type_, literal, field",
    [
        ("kafka", {"rest_url": "https://k.example.com", "bootstrap_servers": "10.0.0.5:9092"}, "bootstrap_servers"),
        ("pubsub", {"endpoint": "169.254.169.254:80"}, "endpoint"),
        ("rabbitmq", {"url": "amqp://10.0.0.5:5672", "protocol": "amqp"}, "url"),
        ("sqs", {"queue_url": "http://127.0.0.1:9324/000000000000/q"}, "queue_url"),
    ],
)
def test_literal_internal_hosts_are_refused_in_every_target_field(api, settings, type_, literal, field):
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = False
    base = {
        "kafka": {"cluster_id": "c", "topic": "t"},
        "pubsub": {"project_id": "p", "topic_id": "t"},
        "rabbitmq": {"exchange": "e", "username": "u", "password": "p"},
        "sqs": {"region": "us-east-1", "access_key_id": "a", "secret_access_key": "s"},
    }[type_]
    response = post_json(api, "/v1/destinations", {"name": "T", "type": type_, "provider_config": {**base, **literal}})

    assert_error_body(response, 400, f"provider_config.{field}")


def test_a_service_account_token_uri_is_a_checked_target(api, settings):
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = False
    account = {"type": "service_account", "token_uri": "http://169.254.169.254/token", "private_key": "k"}
    body = {
        "name": "P",
        "type": "pubsub",
        "provider_config": {"project_id": "p", "topic_id": "t", "service_account_json": account},
    }

    response = post_json(api, "/v1/destinations", body)

    body = assert_error_body(response, 400, "provider_config.service_account_json")
    assert "token_uri" in body["details"]["provider_config.service_account_json"][0]


def test_credential_headers_come_back_masked_and_an_echo_keeps_them(api):
    headers = {"Authorization": "Bearer tok-secret-9876", "X-Api-Key": "key-abcdef-1234", "X-Plain": "visible"}
    created = post_json(
        api, "/v1/destinations", {"name": "H", "type": "http", "url": "https://h.example.com/", "headers": headers}
    )
    assert created.status_code == 201, created.json()
    shown = created.json()["headers"]
    assert shown == {"Authorization": "Bearer ****9876", "X-Api-Key": "****1234", "X-Plain": "visible"}
    destination_id = created.json()["id"]
    assert api.get(f"/v1/destinations/{destination_id}").json()["headers"] == shown

    echoed = patch_json(api, f"/v1/destinations/{destination_id}", {"headers": shown, "name": "H2"})

    assert echoed.status_code == 200, echoed.json()
    assert Destination.objects.get(pk=destination_id).headers == headers


def test_basic_auth_masks_show_nothing_of_the_credentials(alice, api):
    created = post_json(
        api,
        "/v1/destinations",
        {
            "name": "B",
            "type": "http",
            "url": "https://h.example.com/",
            "headers": {"Authorization": "Basic dXNlcjpodW50ZXIy"},
        },
    )
    assert created.json()["headers"] == {"Authorization": "Basic ****"}

    receiver = Receiver()
    try:
        destination = provider_destination(
            alice.org, "http", {"auth_type": "basic", "username": "user", "password": "hunter2"}, url=receiver.url
        )
        _event, delivery = deliver(alice.org, destination)
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.request_headers["Authorization"] == "Basic ****"
    finally:
        receiver.close()


def test_websocket_provider_headers_come_back_masked(api):
    config = {"channel_name": "c", "headers": {"Authorization": "Bearer ws-secret-5555", "X-Team": "eu"}}
    created = post_json(
        api,
        "/v1/destinations",
        {"name": "W", "type": "websocket", "url": "wss://w.example.com/", "provider_config": config},
    )
    assert created.status_code == 201, created.json()
    shown = created.json()["provider_config"]["headers"]
    assert shown == {"Authorization": "Bearer ****5555", "X-Team": "eu"}

    destination_id = created.json()["id"]
    echoed = patch_json(api, f"/v1/destinations/{destination_id}", {"provider_config": {"headers": shown}})

    assert echoed.status_code == 200, echoed.json()
    stored = Destination.objects.get(pk=destination_id).provider_config["headers"]
    assert stored["Authorization"] == "Bearer ws-secret-5555"
