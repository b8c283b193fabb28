"""The validation table: every bad request answers a 4xx with the error body, never a 500."""

import pytest
from django.test import override_settings

from destinations import services
from destinations.models import Destination
from tests.destinations.helpers import assert_error_body, patch_json, post_json
from tests.factories import make_destination

HTTP = {"name": "Hook", "type": "http", "url": "https://hooks.example.com/in"}


def _with(**changes):
    body = dict(HTTP)
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


BAD_CREATES = [
    ("unknown type", _with(type="ftp"), "type"),
    ("http without url", _with(url=...), "url"),
    ("http with an empty url", _with(url=""), "url"),
    ("url that is not http", _with(url="ftp://files.example.com/x"), "url"),
    ("url without a host", _with(url="https://"), "url"),
    ("retry_max_attempts 0", _with(retry_max_attempts=0), "retry_max_attempts"),
    ("retry_max_attempts 11", _with(retry_max_attempts=11), "retry_max_attempts"),
    ("retry_max_attempts as text", _with(retry_max_attempts="5"), "retry_max_attempts"),
    ("negative interval", _with(retry_intervals=[30, -1]), "retry_intervals.1"),
    ("fractional interval", _with(retry_intervals=[1.5]), "retry_intervals.0"),
    ("interval as text", _with(retry_intervals=["30"]), "retry_intervals.0"),
    ("interval as boolean", _with(retry_intervals=[True]), "retry_intervals.0"),
    ("empty intervals", _with(retry_intervals=[]), "retry_intervals"),
    ("intervals not a list", _with(retry_intervals=30), "retry_intervals"),
    ("unknown backoff type", _with(retry_backoff_type="quadratic"), "retry_backoff_type"),
    ("bad slug", _with(slug="Bad Slug!"), "slug"),
    ("slug with underscore", _with(slug="bad_slug"), "slug"),
    ("unknown method", _with(method="GET"), "method"),
    ("headers not an object", _with(headers=["X-A: b"]), "headers"),
    ("header value with a line break", _with(headers={"X-A": "b\r\nX-Evil: 1"}), "headers"),
    ("header value not a string", _with(headers={"X-A": 1}), "headers"),
    ("reserved header", _with(headers={"Host": "internal"}), "headers"),
    ("too many headers", _with(headers={f"X-H{i}": "v" for i in range(51)}), "headers"),
    ("header value too long", _with(headers={"X-A": "v" * 8193}), "headers"),
    ("timeout_ms too small", _with(timeout_ms=0), "timeout_ms"),
    ("timeout_ms too large", _with(timeout_ms=10**9), "timeout_ms"),
    ("timeout as text", _with(timeout="thirty"), "timeout"),
    ("timeout and timeout_ms", _with(timeout=5, timeout_ms=5000), "timeout"),
    ("config and provider_config", _with(config={}, provider_config={}), "config"),
    ("provider_config not an object", _with(provider_config="x"), "provider_config"),
    ("unknown provider_config field", _with(provider_config={"colour": "red"}), "provider_config.colour"),
    ("bearer without token", _with(provider_config={"auth_type": "bearer"}), "provider_config.token"),
    ("unknown auth_type", _with(provider_config={"auth_type": "kerberos"}), "provider_config.auth_type"),
    ("circuit threshold 0", _with(circuit_breaker_threshold=0), "circuit_breaker_threshold"),
    ("negative circuit reset", _with(circuit_breaker_reset_ms=-1), "circuit_breaker_reset_ms"),
    ("circuit flag as text", _with(circuit_breaker_enabled="yes"), "circuit_breaker_enabled"),
    ("unknown status", _with(status="sleeping"), "status"),
    ("max_concurrency 0", _with(max_concurrency=0), "max_concurrency"),
    ("unknown field", _with(retry_max_attempt=3), "retry_max_attempt"),
    ("unknown template", _with(template="myspace"), "template"),
    ("missing name", {"type": "http", "url": "https://hooks.example.com/in"}, "name"),
    ("missing type", {"name": "x", "url": "https://hooks.example.com/in"}, "type"),
    ("signing algorithm", _with(signing_config={"secret": "s3cret", "algorithm": "md5"}), "signing_config.algorithm"),
    ("signing without secret", _with(signing_config={"algorithm": "sha256"}), "signing_config.secret"),
    ("signing bad header", _with(signing_config={"secret": "s", "header": "X Bad"}), "signing_config.header"),
    (
        "standard webhooks secret",
        _with(signing_config={"mode": "standard_webhooks", "secret": "abc"}),
        "signing_config.secret",
    ),
    ("signing unknown mode", _with(signing_config={"mode": "jwt", "secret": "s"}), "signing_config.mode"),
    ("signing not an object", _with(signing_config="s3cret"), "signing_config"),
    (
        "masked secret on create",
        _with(provider_config={"auth_type": "bearer", "token": "****abcd"}),
        "provider_config.token",
    ),
    ("sqs without anything", {"name": "q", "type": "sqs"}, "provider_config.queue_url"),
    (
        "sqs without credentials",
        {
            "name": "q",
            "type": "aws_sqs",
            "provider_config": {"queue_url": "https://sqs.example/1/q", "region": "eu-west-1"},
        },
        "provider_config.secret_access_key",
    ),  # noqa: E501
    (
        "s3 without bucket",
        {"name": "b", "type": "s3", "provider_config": {"region": "eu-west-1"}},
        "provider_config.bucket",
    ),
    ("s3 bad format", {"name": "b", "type": "s3", "provider_config": {"format": "xml"}}, "provider_config.format"),
    ("eventbridge without region", {"name": "e", "type": "eventbridge"}, "provider_config.region"),
    (
        "pubsub without topic",
        {"name": "p", "type": "gcp_pubsub", "provider_config": {"project_id": "p"}},
        "provider_config.topic_id",
    ),  # noqa: E501
    (
        "kafka without rest_url",
        {"name": "k", "type": "kafka", "provider_config": {"cluster_id": "c", "topic": "t"}},
        "provider_config.rest_url",
    ),  # noqa: E501
    (
        "rabbitmq without exchange",
        {"name": "r", "type": "rabbitmq", "provider_config": {"url": "https://mq.example"}},
        "provider_config.exchange",
    ),  # noqa: E501
    (
        "websocket channel destination named as a stream channel",
        {"name": "w", "type": "websocket", "provider_config": {"channel_name": "events"}},
        "provider_config.channel_name",
    ),  # noqa: E501
    (
        "websocket with an http url",
        {"name": "w", "type": "websocket", "url": "https://ws.example", "provider_config": {"channel_name": "events"}},
        "url",
    ),  # noqa: E501
    (
        "websocket bad channel",
        {
            "name": "w",
            "type": "websocket",
            "url": "wss://ws.example",
            "provider_config": {"channel_name": "Bad Channel"},
        },
        "provider_config.channel_name",
    ),  # noqa: E501
    ("url on an sqs destination", {"name": "q", "type": "sqs", "url": "https://x.example"}, "url"),
    (
        "signing on an sqs destination",
        {
            "name": "q",
            "type": "sqs",
            "signing_config": {"secret": "s"},
            "provider_config": {
                "queue_url": "https://sqs.example/1/q",
                "region": "r",
                "access_key_id": "a",
                "secret_access_key": "s",
            },
        },
        "signing_config",
    ),  # noqa: E501
]


@pytest.mark.parametrize("case,body,field", BAD_CREATES, ids=[case[0] for case in BAD_CREATES])
def test_it_refuses_a_bad_create_with_the_error_body(api, case, body, field):
    response = post_json(api, "/v1/destinations", body)

    assert_error_body(response, 400, field)
    assert not Destination.all_objects.exists()


def test_it_answers_409_for_a_duplicate_slug(api, alice):
    make_destination(alice.org, slug="backend-api")

    response = post_json(api, "/v1/destinations", _with(slug="backend-api"))

    body = assert_error_body(response, 409)
    assert "backend-api" in body["error"]


def test_it_answers_409_when_a_patch_takes_a_used_slug(api, alice):
    make_destination(alice.org, slug="taken")
    other = make_destination(alice.org, slug="mine")

    response = patch_json(api, f"/v1/destinations/{other.id}", {"slug": "taken"})

    assert_error_body(response, 409)
    other.refresh_from_db()
    assert other.slug == "mine"


def test_it_lets_another_organization_use_the_same_slug(api, bob):
    make_destination(bob.org, slug="backend-api")

    response = post_json(api, "/v1/destinations", _with(slug="backend-api"))

    assert response.status_code == 201


def test_it_frees_the_slug_of_a_deleted_destination(api, alice):
    first = post_json(api, "/v1/destinations", _with(slug="reused")).json()
    api.delete(f"/v1/destinations/{first['id']}")

    response = post_json(api, "/v1/destinations", _with(slug="reused"))

    assert response.status_code == 201


def test_it_derives_a_free_slug_from_the_name(api, alice):
    make_destination(alice.org, slug="backend-api")

    response = post_json(api, "/v1/destinations", _with(name="Backend API"))

    assert response.status_code == 201
    assert response.json()["slug"] == "backend-api-2"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "", "1.5"])
def test_it_refuses_a_limit_outside_1_to_100(api, limit):
    response = api.get(f"/v1/destinations?limit={limit}")

    assert_error_body(response, 400, "limit")


def test_it_refuses_a_forged_cursor(api):
    response = api.get("/v1/destinations?cursor=not-a-cursor")

    assert_error_body(response, 400, "cursor")


def test_it_answers_400_for_malformed_json(api):
    response = post_json(api, "/v1/destinations", '{"name": "x", "type": ')

    assert_error_body(response, 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_it_answers_415_for_a_wrong_content_type(api, content_type):
    response = api.generic("POST", "/v1/destinations", "name=x&type=http", content_type=content_type)

    assert_error_body(response, 415)


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_it_answers_400_for_a_body_that_is_not_an_object(api, body):
    response = post_json(api, "/v1/destinations", body)

    assert_error_body(response, 400)


def test_it_answers_405_with_the_error_body_for_put(api, alice):
    destination = make_destination(alice.org)

    response = api.put(f"/v1/destinations/{destination.id}", HTTP, format="json")

    assert_error_body(response, 405)


def test_it_refuses_a_bad_patch_and_keeps_the_row(api, alice):
    destination = make_destination(alice.org, retry_max_attempts=5)

    response = patch_json(api, f"/v1/destinations/{destination.id}", {"retry_max_attempts": 11, "name": "changed"})

    assert_error_body(response, 400, "retry_max_attempts")
    destination.refresh_from_db()
    assert (destination.retry_max_attempts, destination.name) == (5, destination.name)
    assert destination.name != "changed"


def test_it_refuses_a_patch_that_blanks_the_url(api, alice):
    destination = make_destination(alice.org, url="https://hooks.example.com/in")

    response = patch_json(api, f"/v1/destinations/{destination.id}", {"url": ""})

    assert_error_body(response, 400, "url")


@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False)
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_it_refuses_a_literal_private_address(api, url):
    response = post_json(api, "/v1/destinations", _with(url=url))

    body = assert_error_body(response, 400, "url")
    assert "SSRF" in body["details"]["url"][0]


@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False)
def test_it_refuses_a_private_websocket_address(api):
    body = {"name": "w", "type": "websocket", "url": "ws://127.0.0.1:9000/", "provider_config": {"channel_name": "e"}}

    response = post_json(api, "/v1/destinations", body)

    assert_error_body(response, 400, "url")


@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False)
def test_it_refuses_a_patch_to_a_private_address(api, alice):
    destination = make_destination(alice.org, url="https://hooks.example.com/in")

    response = patch_json(api, f"/v1/destinations/{destination.id}", {"url": "http://192.168.1.1/"})

    assert_error_body(response, 400, "url")


@override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=True)
def test_it_allows_a_private_address_when_the_setting_allows_it(api):
    response = post_json(api, "/v1/destinations", _with(url="http://127.0.0.1:8080/hook"))

    assert response.status_code == 201


def test_it_answers_409_when_a_concurrent_request_took_the_slug(api, alice, monkeypatch):
    make_destination(alice.org, slug="raced")
    # As if the other request inserted between our check and our insert: the unique
    # constraint answers, and that must be a 409 too, not a 500 or a 503.
    monkeypatch.setattr(services, "_check_slug", lambda **kwargs: None)

    response = post_json(api, "/v1/destinations", _with(slug="raced"))

    assert_error_body(response, 409)
    assert Destination.objects.filter(slug="raced").count() == 1
