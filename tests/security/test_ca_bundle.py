"""``HOOKSTREAM_CA_BUNDLE``: every TLS connection the workers open (HTTP pools, wss, AMQPS,
gRPC) trusts the usual CAs plus the operator's PEM file, and nothing else.

Each test runs a server on loopback presenting a certificate from a CA made for the test:
without the bundle the attempt fails on the certificate, with it the same attempt succeeds.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import ssl
import threading

import grpc
import pika
import pytest
from google.auth.credentials import AnonymousCredentials
from websockets.sync.server import serve

from deliveries.models import DeliveryAttempt
from hookstream import outbound
from hookstream.env import ImproperlyConfiguredEnv, env_pem_file
from tests.providers.support import deliver, provider_destination
from tests.tls_support import ThrowawayCA, TlsHttpServer, throwaway_ca


@pytest.fixture
def ca(tmp_path) -> ThrowawayCA:
    return throwaway_ca(tmp_path, ["127.0.0.1", "localhost"])


def _accepted(method, path, headers, body):
    return 200, "application/json", b'{"ok":true}'


@pytest.mark.django_db
def test_it_trusts_a_private_ca_over_https_only_with_the_bundle(alice, ca, settings):
    server = TlsHttpServer(ca, _accepted)
    try:
        destination = provider_destination(
            alice.org, "http", {}, url=f"https://127.0.0.1:{server.port}/hook", retry_intervals=[60]
        )
        _event, refused = deliver(alice.org, destination, {"n": 1})
        assert refused.status == "scheduled"
        assert "CERTIFICATE_VERIFY_FAILED" in refused.last_error
        assert server.requests == []

        settings.HOOKSTREAM_CA_BUNDLE = str(ca.ca_file)
        _event, delivered = deliver(alice.org, destination, {"n": 2})
        assert delivered.status == "succeeded", delivered.last_error
        assert [json.loads(body) for _m, _p, _h, body in server.requests] == [{"n": 2}]
    finally:
        server.close()


@pytest.mark.django_db
def test_a_certificate_for_another_name_is_refused_even_with_the_bundle(alice, tmp_path, settings):
    other = throwaway_ca(tmp_path, ["hooks.example.com"])
    server = TlsHttpServer(other, _accepted)
    settings.HOOKSTREAM_CA_BUNDLE = str(other.ca_file)
    try:
        destination = provider_destination(
            alice.org, "http", {}, url=f"https://127.0.0.1:{server.port}/hook", retry_intervals=[60]
        )
        _event, delivery = deliver(alice.org, destination)
        assert delivery.status == "scheduled"
        assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
        assert server.requests == []
    finally:
        server.close()


@pytest.mark.django_db
def test_it_trusts_a_private_ca_over_wss_only_with_the_bundle(alice, ca, settings):
    frames = []

    def handler(conn):
        for text in conn:
            frames.append(json.loads(text))

    server = serve(handler, "127.0.0.1", 0, ssl=ca.server_context())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"wss://127.0.0.1:{server.socket.getsockname()[1]}/feed"
        destination = provider_destination(alice.org, "websocket", {"channel_name": "orders"}, url=url)
        _event, refused = deliver(alice.org, destination, {"n": 1})
        assert refused.status == "scheduled"
        assert "CERTIFICATE_VERIFY_FAILED" in DeliveryAttempt.objects.get(delivery=refused).error

        settings.HOOKSTREAM_CA_BUNDLE = str(ca.ca_file)
        _event, delivered = deliver(alice.org, destination, {"n": 2})
        assert delivered.status == "succeeded", delivered.last_error
        assert [frame["data"]["payload"] for frame in frames] == [{"n": 2}]
    finally:
        server.shutdown()
        thread.join(5)


class _TlsHandshakes:
    """A TLS listener on loopback that completes handshakes and then closes: ``handshakes``
    counts the clients that accepted its certificate."""

    def __init__(self, ca: ThrowawayCA):
        self.context = ca.server_context()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    self.handshakes += 1
            except (ssl.SSLError, OSError):
                conn.close()

    def close(self):
        self.sock.close()


def test_amqps_trusts_a_private_ca_only_with_the_bundle(ca, settings):
    listener = _TlsHandshakes(ca)
    url = f"amqps://127.0.0.1:{listener.port}"
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            outbound.amqp_connect(url, socket_timeout=2, stack_timeout=3, connection_attempts=1)
        assert listener.handshakes == 0

        settings.HOOKSTREAM_CA_BUNDLE = str(ca.ca_file)
        # The listener is no broker: the connection fails after the handshake, not at it.
        with pytest.raises((pika.exceptions.AMQPError, OSError)) as failed:
            outbound.amqp_connect(url, socket_timeout=2, stack_timeout=3, connection_attempts=1)
        assert not isinstance(failed.value, ssl.SSLError)
        assert listener.handshakes == 1
    finally:
        listener.close()


def test_grpc_trusts_a_private_ca_only_with_the_bundle(ca, settings):
    def publish(request, context):
        return b"published"

    handler = grpc.method_handlers_generic_handler(
        "google.pubsub.v1.Publisher", {"Publish": grpc.unary_unary_rpc_method_handler(publish)}
    )
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials([(ca.key_file.read_bytes(), ca.cert_file.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    target = outbound.check_target("localhost", port)

    def call() -> bytes:
        channel = outbound.grpc_channel(target, credentials=AnonymousCredentials(), auth_request=None)
        try:
            return channel.unary_unary("/google.pubsub.v1.Publisher/Publish")(b"", timeout=5)
        finally:
            channel.close()

    try:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

        settings.HOOKSTREAM_CA_BUNDLE = str(ca.ca_file)
        assert call() == b"published"
    finally:
        server.stop(None)


def test_a_missing_or_unusable_bundle_stops_the_process_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_CA_BUNDLE", str(tmp_path / "absent.pem"))
    with pytest.raises(ImproperlyConfiguredEnv, match="HOOKSTREAM_CA_BUNDLE=.*is not a file"):
        env_pem_file("HOOKSTREAM_CA_BUNDLE")

    not_pem = tmp_path / "key.txt"
    not_pem.write_text("not a certificate\n")
    monkeypatch.setenv("HOOKSTREAM_CA_BUNDLE", str(not_pem))
    with pytest.raises(ImproperlyConfiguredEnv, match="holds no PEM certificate"):
        env_pem_file("HOOKSTREAM_CA_BUNDLE")

    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("HOOKSTREAM_CA_BUNDLE", str(broken))
    with pytest.raises(ImproperlyConfiguredEnv, match="not a usable PEM CA bundle"):
        env_pem_file("HOOKSTREAM_CA_BUNDLE")


def test_a_usable_bundle_is_read_as_its_absolute_path(ca, monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_CA_BUNDLE", str(ca.ca_file))
    assert env_pem_file("HOOKSTREAM_CA_BUNDLE") == str(ca.ca_file.resolve())
