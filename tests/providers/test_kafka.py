"""Kafka destinations against an in-test Confluent REST Proxy v3 on loopback that checks the
wire format strictly and can answer every documented outcome."""

from __future__ import annotations

import base64
import errno
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from deliveries.engine import process_delivery
from deliveries.models import DeliveryAttempt
from destinations.providers.kafka import records_url
from tests.providers.support import (
    assert_retried_by_policy_then_dead_lettered,
    assert_unreachable_is_retried_then_dead_lettered,
    deliver,
    provider_destination,
)
from tests.support import require_service
from tests.tls_support import ThrowawayCA, TlsHttpServer, throwaway_ca

CLUSTER = "lkc-abc123"
TOPIC = "orders"
AUTH = "Basic " + base64.b64encode(b"key-1:secret-1").decode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class Proxy:
    """A strict REST Proxy: wrong path/auth/content type/body shape is answered 4xx.

    ``prefix`` is where it serves v3: ``/kafka/v3`` (Confluent Cloud, Confluent Server) or
    ``/v3`` (a self-managed REST Proxy)."""

    def __init__(self, prefix: str = "/kafka/v3", *, tls: tuple[ThrowawayCA, str, int] | None = None):
        self.prefix = prefix
        self.records: list[dict] = []
        self.script: list[tuple[int, str, bytes]] = []  # (status, content type, body) answered next
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                self._answer(*proxy.handle(self.path, self.headers, raw))

            def _answer(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._tls: TlsHttpServer | None = None
        if tls is not None:  # HTTPS on (host, port), with a certificate from the test's CA
            ca, host, port = tls
            self.ca_file = ca.ca_file
            self._tls = TlsHttpServer(
                ca, lambda _method, path, headers, raw: proxy.handle(path, headers, raw), host, port
            )
            self.url = f"https://{host}:{port}"
            return
        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def handle(self, path, headers, raw):
        def error(status, code, message):
            return status, "application/json", json.dumps({"error_code": code, "message": message}).encode()

        prefix = f"{self.prefix}/clusters/{CLUSTER}/topics/"
        if not path.startswith(prefix) or not path.endswith("/records"):
            return error(404, 404, f"bad path {path}")
        if headers.get("Authorization") != AUTH:
            return error(401, 401, "unauthorized")
        if headers.get("Content-Type") != "application/json":
            return error(415, 415, "unsupported media type")
        topic = path[len(prefix) : -len("/records")]
        if topic != TOPIC:
            return error(404, 40403, "This server does not host this topic-partition.")
        body = json.loads(raw)
        value = body["value"]
        assert value["type"] in ("JSON", "BINARY"), value
        decoded = {h["name"]: base64.b64decode(h["value"], validate=True).decode() for h in body["headers"]}
        if self.script:
            return self.script.pop(0)
        self.records.append({"value": value, "headers": decoded})
        offset = len(self.records) - 1
        answer = {
            "error_code": 200,
            "cluster_id": CLUSTER,
            "topic_name": TOPIC,
            "partition_id": 0,
            "offset": offset,
            "value": {"type": value["type"], "size": len(raw)},
        }
        return 200, "application/json", json.dumps(answer).encode()

    def close(self):
        if self._tls is not None:
            self._tls.close()
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def proxy():
    server = Proxy()
    yield server
    server.close()


def _destination(org, rest_url, **config):
    fields = {k: config.pop(k) for k in ("retry_intervals", "retry_max_attempts") if k in config}
    full = {"rest_url": rest_url, "cluster_id": CLUSTER, "topic": TOPIC, "api_key": "key-1", "api_secret": "secret-1"}
    return provider_destination(org, "kafka", {**full, **config}, **fields)


@pytest.mark.django_db
def test_it_produces_a_json_record_with_base64_headers(alice, proxy):
    destination = _destination(alice.org, proxy.url)
    event, delivery = deliver(alice.org, destination, {"type": "order.created", "amount": 5})

    assert delivery.status == "succeeded", delivery.last_error
    assert proxy.records == [
        {
            "value": {"type": "JSON", "data": {"type": "order.created", "amount": 5}},
            "headers": {"hookstream-event-id": event.id, "hookstream-destination-id": str(destination.pk)},
        }
    ]
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.request_url.endswith(f"/kafka/v3/clusters/{CLUSTER}/topics/{TOPIC}/records")
    assert "secret-1" not in json.dumps(attempt.request_headers)


@pytest.mark.django_db
def test_a_non_json_body_is_sent_as_binary(alice, proxy):
    destination = _destination(alice.org, proxy.url)
    _event, delivery = deliver(alice.org, destination, None, body=b"\x00raw", content_type="application/octet-stream")

    assert delivery.status == "succeeded"
    assert proxy.records[0]["value"] == {"type": "BINARY", "data": base64.b64encode(b"\x00raw").decode()}


@pytest.mark.django_db
def test_an_unknown_topic_is_retried_by_policy_then_dead_lettered(alice, proxy):
    destination = _destination(alice.org, proxy.url, topic="nope", retry_intervals=[0], retry_max_attempts=2)
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "unknown cluster or topic")
    assert [a.response_status for a in attempts] == [404, 404, 404]
    assert proxy.records == []


@pytest.mark.django_db
def test_bad_credentials_are_retried_by_policy_then_dead_lettered(alice, proxy):
    destination = _destination(alice.org, proxy.url, api_secret="wrong", retry_intervals=[0], retry_max_attempts=3)
    attempts = assert_retried_by_policy_then_dead_lettered(alice.org, destination, "refused the credentials")
    assert [a.response_status for a in attempts] == [401, 401, 401, 401]
    assert proxy.records == []


@pytest.mark.django_db
def test_an_error_code_400_is_retried_and_a_later_success_delivers(alice, proxy):
    proxy.script.append((200, "application/json", b'{"error_code":400,"message":"bad request"}'))
    destination = _destination(alice.org, proxy.url, retry_intervals=[0], retry_max_attempts=1)
    _event, delivery = deliver(alice.org, destination, {"type": "order.created"})
    assert delivery.status == "scheduled"
    assert "error_code 400" in delivery.last_error

    process_delivery(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded", delivery.last_error
    assert [r["value"]["data"] for r in proxy.records] == [{"type": "order.created"}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((413, "application/json", b'{"error_code":413,"message":"too large"}'), "scheduled"),
        ((415, "application/json", b'{"error_code":415,"message":"media"}'), "scheduled"),
        ((422, "application/json", b'{"error_code":42206,"message":"bad"}'), "scheduled"),
        ((429, "text/html", b"<html><body>Too Many Requests</body></html>"), "scheduled"),
        ((500, "application/json", b'{"error_code":500,"message":"boom"}'), "scheduled"),
        ((503, "text/plain", b"unavailable"), "scheduled"),
        ((200, "application/json", b'{"error_code":50002,"message":"Kafka error"}'), "scheduled"),
        ((200, "application/json", b'{"error_code":429,"message":"throttled"}'), "scheduled"),
        ((200, "application/json", b'{"error_code":40002,"message":"invalid record"}'), "scheduled"),
    ],
)
def test_every_documented_outcome(alice, proxy, answer, expected):
    proxy.script.append(answer)
    destination = _destination(alice.org, proxy.url, retry_intervals=[60])
    _event, delivery = deliver(alice.org, destination)

    assert delivery.status == expected
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status == "failed" and attempt.response_status == answer[0]


@pytest.mark.django_db
def test_a_proxy_that_is_down_is_retried_then_dead_lettered(alice):
    destination = _destination(alice.org, "http://127.0.0.1:9", retry_intervals=[0], retry_max_attempts=1)
    assert_unreachable_is_retried_then_dead_lettered(alice.org, destination)


@pytest.mark.parametrize(
    ("config", "url"),
    [
        # The hosted provider page: bootstrap server only; the REST endpoint sits beside it on 443.
        (
            {"bootstrap_servers": "pkc-12576z.us-west2.gcp.confluent.cloud:9092"},
            "https://pkc-12576z.us-west2.gcp.confluent.cloud:443/kafka/v3/clusters/lkc-abc123/topics/orders/records",
        ),
        (
            {"bootstrap_servers": "SASL_SSL://pkc-1.eu.aws.confluent.cloud:9092,pkc-2.eu.aws.confluent.cloud:9092"},
            "https://pkc-1.eu.aws.confluent.cloud:443/kafka/v3/clusters/lkc-abc123/topics/orders/records",
        ),
        # Confluent Cloud's REST endpoint, bare or with its /kafka/v3 path.
        (
            {"rest_url": "https://pkc-1.confluent.cloud:443"},
            "https://pkc-1.confluent.cloud:443/kafka/v3/clusters/lkc-abc123/topics/orders/records",
        ),
        (
            {"rest_url": "https://pkc-1.confluent.cloud/kafka/v3/"},
            "https://pkc-1.confluent.cloud/kafka/v3/clusters/lkc-abc123/topics/orders/records",
        ),
        (
            {"rest_url": "https://pkc-1.confluent.cloud/kafka"},
            "https://pkc-1.confluent.cloud/kafka/v3/clusters/lkc-abc123/topics/orders/records",
        ),
        # A bare base of any other host: spec §4's {rest}/kafka/v3 (Confluent Server serves it).
        ({"rest_url": "http://proxy:8082"}, "http://proxy:8082/kafka/v3/clusters/lkc-abc123/topics/orders/records"),
        # A self-managed REST Proxy serves v3 at /v3, at its root or under a gateway's prefix.
        ({"rest_url": "http://proxy:8082/v3"}, "http://proxy:8082/v3/clusters/lkc-abc123/topics/orders/records"),
        (
            {"rest_url": "https://gw.example/kafka-rest/v3/"},
            "https://gw.example/kafka-rest/v3/clusters/lkc-abc123/topics/orders/records",
        ),
        (
            {"rest_url": "http://proxy:8082/v3/clusters/lkc-abc123/topics/orders/records"},
            "http://proxy:8082/v3/clusters/lkc-abc123/topics/orders/records",
        ),
    ],
)
def test_it_derives_the_v3_records_url(config, url):
    assert records_url({"cluster_id": CLUSTER, "topic": TOPIC, **config}) == url


@pytest.mark.django_db
def test_a_rest_url_with_its_kafka_v3_path_produces(alice, proxy):
    destination = _destination(alice.org, proxy.url + "/kafka/v3")
    _event, delivery = deliver(alice.org, destination)
    assert delivery.status == "succeeded", delivery.last_error
    assert len(proxy.records) == 1


@pytest.mark.django_db
def test_a_self_managed_rest_proxy_at_v3_produces(alice):
    server = Proxy(prefix="/v3")
    try:
        destination = _destination(alice.org, server.url + "/v3")
        _event, delivery = deliver(alice.org, destination, {"type": "order.created"})
        assert delivery.status == "succeeded", delivery.last_error
        assert [r["value"]["data"] for r in server.records] == [{"type": "order.created"}]
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.request_url == f"{server.url}/v3/clusters/{CLUSTER}/topics/{TOPIC}/records"
    finally:
        server.close()


@pytest.mark.django_db
def test_a_bare_base_of_a_self_managed_proxy_names_the_v3_rule_in_its_error(alice):
    server = Proxy(prefix="/v3")
    try:
        destination = _destination(alice.org, server.url, retry_intervals=[60])
        _event, delivery = deliver(alice.org, destination)
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.request_url == f"{server.url}/kafka/v3/clusters/{CLUSTER}/topics/{TOPIC}/records"
        assert attempt.response_status == 404
        assert "end rest_url with /v3" in attempt.error
        assert server.records == []
    finally:
        server.close()


def _proxy_on_loopback_443(tmp_path) -> Proxy:
    """A strict REST Proxy over TLS on port 443 of a random 127/8 address (each is its own
    address on Linux, so parallel runs do not collide), with a certificate for that address."""
    for attempt in range(10):
        address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
        directory = tmp_path / f"ca-{attempt}"
        directory.mkdir()
        ca = throwaway_ca(directory, [address])
        try:
            return Proxy(tls=(ca, address, 443))
        except PermissionError:
            require_service("port 443 on loopback", False, "binding it needs root or CAP_NET_BIND_SERVICE")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise AssertionError("no free 127/8 address for port 443")


@pytest.mark.django_db
def test_bootstrap_servers_alone_produces_to_the_derived_rest_endpoint_over_tls(alice, tmp_path, settings):
    """The hosted provider page's configuration: bootstrap server, cluster, topic, key and
    secret, no rest_url. Records go to https://<bootstrap host>:443/kafka/v3/…, verified
    against the operator's CA bundle."""
    server = _proxy_on_loopback_443(tmp_path)
    try:
        settings.HOOKSTREAM_CA_BUNDLE = str(server.ca_file)
        host = server.url.removeprefix("https://").removesuffix(":443")
        destination = _destination(alice.org, "", bootstrap_servers=f"SASL_SSL://{host}:9092", retry_intervals=[60])
        event, delivery = deliver(alice.org, destination, {"type": "order.created", "amount": 5})

        assert delivery.status == "succeeded", delivery.last_error
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.request_url == f"https://{host}:443/kafka/v3/clusters/{CLUSTER}/topics/{TOPIC}/records"
        assert server.records == [
            {
                "value": {"type": "JSON", "data": {"type": "order.created", "amount": 5}},
                "headers": {"hookstream-event-id": event.id, "hookstream-destination-id": str(destination.pk)},
            }
        ]
    finally:
        server.close()


@pytest.mark.django_db
def test_the_ssrf_guard_refuses_a_private_proxy_permanently(alice, proxy):
    destination = _destination(alice.org, proxy.url)
    with override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False):
        _event, delivery = deliver(alice.org, destination)

    assert delivery.status == "dead"
    assert "SSRF guard" in delivery.last_error
    assert proxy.records == []
