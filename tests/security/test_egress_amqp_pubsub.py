"""Issue 12, finding 2: RabbitMQ over AMQP and Pub/Sub (gRPC, google-auth) go through the guard.

With private networks off, a target that is (or resolves to) a private address is refused
before any socket is opened: a real loopback listener sees no connection, the attempt is a
permanent "SSRF guard" failure, and the error is the same whatever listens there. Literal
private hosts are refused at validation with a 400 naming the field. With private networks on,
the same code path reaches real servers at exactly the checked address, keeping the name for
TLS and the authority. Pub/Sub never publishes with the server's own Google credentials unless
the operator lends them (``HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS``).

Host names that resolve to loopback are simulated by answering ``socket.getaddrinfo`` for them
(the guard resolves through it); nothing here sends traffic off loopback.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google.auth
import pika
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.oauth2 import service_account

from deliveries.engine import process_delivery
from deliveries.models import DeadLetter, DeliveryAttempt
from destinations.models import Destination
from destinations.providers import get_provider
from destinations.providers import pubsub as pubsub_provider
from destinations.providers import rabbitmq as rabbitmq_provider
from hookstream import crypto, outbound
from hookstream.ssrf import SSRFRefused
from tests.destinations.helpers import assert_error_body, post_json
from tests.factories import make_delivery, make_destination, make_event
from tests.providers.test_pubsub import PROJECT, _pull, emulator, topic  # noqa: F401 - fixtures
from tests.support import port_open, require_service

RABBIT = {"exchange": "amq.direct", "username": "guest", "password": "guest", "protocol": "amqp"}


class Listener:
    """A TCP listener on 127.0.0.1 that never answers: it records who connected and the first
    bytes each connection sent. It never accepts on its own, so a connection made at any time
    waits in the backlog until :meth:`connections` looks."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []

    def connections(self, settle: float = 0.3) -> list[bytes]:
        time.sleep(settle)  # gRPC connects from its own threads
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self.seen
            conn.settimeout(1)
            try:
                self.seen.append(conn.recv(4096))
            except OSError:
                self.seen.append(b"")
            finally:
                conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    current = Listener()
    yield current
    current.close()


@pytest.fixture
def guard(settings):
    """The production default: private networks refused."""
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = False
    settings.HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS = False
    return settings


@pytest.fixture
def fake_dns(monkeypatch):
    """Names (added to the returned dict) that resolve to a chosen address, as a hostile
    tenant's own DNS would answer; every other name resolves as usual."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            family = socket.AF_INET6 if ":" in names[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (names[host], int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def no_outbound_connection(monkeypatch):
    """Fail the test on any connection or name lookup that leaves loopback (the database and
    Redis of the test run stay reachable)."""
    real_create, real_connect, real_connect_ex = (
        socket.create_connection,
        socket.socket.connect,
        socket.socket.connect_ex,
    )
    real_getaddrinfo = socket.getaddrinfo

    def loopback(host) -> bool:
        try:
            return ipaddress.ip_address(str(host).strip("[]")).is_loopback
        except ValueError:
            return host == "localhost"

    def create_connection(address, *args, **kwargs):
        if not loopback(address[0]):
            pytest.fail(f"a connection to {address} was attempted")
        return real_create(address, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and not loopback(address[0]):
            pytest.fail(f"a connection to {address} was attempted")
        return real_connect(self, address)

    def connect_ex(self, address):
        if isinstance(address, tuple) and not loopback(address[0]):
            pytest.fail(f"a connection to {address} was attempted")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not loopback(host):
            pytest.fail(f"{host} was looked up")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def no_emulator(monkeypatch):
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)


@pytest.fixture(scope="module")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _service_account(private_key: str, token_uri: str) -> dict:
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "k1",
        "private_key": private_key,
        "client_email": "publisher@hookstream-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def _row(org, type_: str, config: dict, **fields) -> Destination:
    """A destination row as it could have been saved (say, while private networks were
    allowed), without today's validation."""
    provider = get_provider(type_)
    return make_destination(
        org, type=type_, url="", provider_config=crypto.encrypt_fields(config, provider.secret_fields()), **fields
    )


def _deliver(org, destination):
    delivery = make_delivery(make_event(org, {"type": "order.created", "amount": 42}), destination)
    process_delivery(delivery.id)
    delivery.refresh_from_db()
    return delivery


def _assert_refused(delivery, *, text: str = "SSRF guard: "):
    assert delivery.status == "dead", delivery.last_error
    assert delivery.last_error.startswith(text), delivery.last_error
    assert DeadLetter.objects.get(delivery=delivery).reason == "permanent_failure"
    assert DeliveryAttempt.objects.get(delivery=delivery).response_status is None


# --- validation: literal private hosts answer 400 naming the field, with no connection -----


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["amqp://10.0.0.5", "amqp://169.254.169.254:5672", "amqps://[::ffff:10.0.0.5]", "amqp://localhost"]
)
def test_it_refuses_an_amqp_url_on_a_private_address_at_validation(api, guard, no_outbound_connection, url):
    body = {"name": "Rabbit", "type": "rabbitmq", "provider_config": {**RABBIT, "url": url}}

    response = post_json(api, "/v1/destinations", body)

    details = assert_error_body(response, 400, "provider_config.url")["details"]
    assert "refused by the SSRF guard" in details["provider_config.url"][0]
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_it_refuses_an_amqp_protocol_url_that_is_not_amqp(api, guard):
    body = {"name": "Rabbit", "type": "rabbitmq", "provider_config": {**RABBIT, "url": "http://mq.example.com"}}

    assert_error_body(post_json(api, "/v1/destinations", body), 400, "provider_config.url")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["169.254.169.254:80", "http://10.0.0.5:8085", "[::1]:8085", "localhost:8085"])
def test_it_refuses_a_pubsub_endpoint_on_a_private_address_at_validation(
    api, guard, no_emulator, no_outbound_connection, endpoint
):
    body = {
        "name": "P",
        "type": "pubsub",
        "provider_config": {"project_id": "p", "topic_id": "t", "endpoint": endpoint},
    }

    response = post_json(api, "/v1/destinations", body)

    details = assert_error_body(response, 400, "provider_config.endpoint")["details"]
    assert "refused by the SSRF guard" in details["provider_config.endpoint"][0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("token_uri", "message"),
    [
        ("http://169.254.169.254/token", "refused by the SSRF guard"),
        ("https://10.0.0.5/token", "refused by the SSRF guard"),
        ("file:///etc/passwd", "Must be a https:// or http:// URL"),
    ],
)
def test_it_refuses_a_token_uri_on_a_private_address_at_validation(
    api, guard, no_emulator, no_outbound_connection, private_key, token_uri, message
):
    account = _service_account(private_key, token_uri)
    body = {
        "name": "P",
        "type": "pubsub",
        "provider_config": {"project_id": "p", "topic_id": "t", "service_account_json": json.dumps(account)},
    }

    response = post_json(api, "/v1/destinations", body)

    details = assert_error_body(response, 400, "provider_config.service_account_json")["details"]
    assert details["provider_config.service_account_json"][0].startswith("token_uri: ")
    assert message in details["provider_config.service_account_json"][0]
    assert "PRIVATE KEY" not in response.content.decode()


@pytest.mark.django_db
def test_it_accepts_the_google_token_uri(api, guard, no_emulator, no_outbound_connection, private_key):
    account = _service_account(private_key, "https://oauth2.googleapis.com/token")
    body = {
        "name": "P",
        "type": "pubsub",
        "provider_config": {"project_id": "p", "topic_id": "t", "service_account_json": account},
    }

    assert post_json(api, "/v1/destinations", body).status_code == 201


# --- AMQP: refused before connect ----------------------------------------------------------


@pytest.mark.django_db
def test_an_amqp_host_that_resolves_to_loopback_is_refused_before_connecting(api, alice, guard, fake_dns, listener):
    fake_dns["rabbit.example.test"] = "127.0.0.1"
    body = {
        "name": "Rabbit",
        "type": "rabbitmq",
        "provider_config": {**RABBIT, "url": f"amqp://rabbit.example.test:{listener.port}"},
    }
    created = post_json(api, "/v1/destinations", body)
    assert created.status_code == 201, created.content  # a name: checked when connecting

    delivery = _deliver(alice.org, Destination.objects.get(pk=created.json()["id"]))

    _assert_refused(delivery)
    assert "rabbit.example.test resolves to 127.0.0.1" in delivery.last_error
    assert listener.connections() == []


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["amqp", "amqps"])
def test_an_amqp_row_on_a_loopback_address_is_refused_before_connecting(alice, guard, listener, scheme):
    destination = _row(alice.org, "rabbitmq", {**RABBIT, "url": f"{scheme}://127.0.0.1:{listener.port}"})

    delivery = _deliver(alice.org, destination)

    _assert_refused(delivery)
    assert listener.connections() == []
    assert str(destination.pk) not in (getattr(rabbitmq_provider._local, "connections", None) or {})


@pytest.mark.django_db
def test_a_refused_target_fails_the_same_whatever_listens_there(alice, guard, listener, no_emulator):
    closed = Listener()
    closed_port = closed.port
    closed.close()  # nothing listens on this port any more
    errors = {}
    for name, port in (("listening", listener.port), ("closed", closed_port)):
        amqp = _row(alice.org, "rabbitmq", {**RABBIT, "url": f"amqp://127.0.0.1:{port}"})
        grpc = _row(alice.org, "pubsub", {"project_id": "p", "topic_id": "t", "endpoint": f"127.0.0.1:{port}"})
        errors[name] = (_deliver(alice.org, amqp).last_error, _deliver(alice.org, grpc).last_error)
        pubsub_provider.forget(grpc.pk)

    assert errors["listening"] == errors["closed"]
    assert errors["listening"][0] == "SSRF guard: 127.0.0.1 is a loopback address; refused by the SSRF guard"
    assert listener.connections() == []


@pytest.mark.django_db
def test_with_private_networks_allowed_the_same_listener_is_reached(alice, settings, listener, fake_dns):
    """The control for the tests above: the listener does see a connection when one is made,
    and an amqps connection goes to the checked address with the URL's name as the TLS
    server name."""
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = True
    fake_dns["rabbit.example.test"] = "127.0.0.1"
    destination = _row(
        alice.org, "rabbitmq", {**RABBIT, "url": f"amqps://rabbit.example.test:{listener.port}"}, timeout_ms=1000
    )

    delivery = _deliver(alice.org, destination)

    assert delivery.status == "scheduled"  # a connection error: retried
    (hello,) = listener.connections()
    assert hello[:1] == b"\x16"  # a TLS handshake…
    assert b"rabbit.example.test" in hello  # …naming the host (SNI), sent to 127.0.0.1


@pytest.mark.django_db
def test_a_real_broker_is_reached_at_the_checked_address(alice, settings, fake_dns, monkeypatch):
    require_service("RabbitMQ", port_open("127.0.0.1", 5672))

    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = True
    fake_dns["rabbit.example.test"] = "127.0.0.1"
    checked = []
    real_check = outbound.check_target
    monkeypatch.setattr(
        outbound, "check_target", lambda host, port: checked.append((host, port)) or real_check(host, port)
    )
    admin = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    channel = admin.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange="amq.direct", routing_key=queue)
    destination = _row(alice.org, "rabbitmq", {**RABBIT, "url": "amqp://rabbit.example.test", "routing_key": queue})

    delivery = _deliver(alice.org, destination)

    assert delivery.status == "succeeded", delivery.last_error
    assert checked == [("rabbit.example.test", 5672)]
    connection = rabbitmq_provider._local.connections[str(destination.pk)][1]
    assert connection._impl.params.host == "127.0.0.1"  # pika never saw the name
    method, _properties, body = channel.basic_get(queue=queue, auto_ack=True)
    assert method is not None and json.loads(body)["amount"] == 42
    rabbitmq_provider._drop(destination)
    admin.close()


# --- Pub/Sub: the endpoint, the token_uri and the default endpoint -------------------------


@pytest.mark.django_db
def test_a_pubsub_endpoint_that_resolves_to_loopback_is_refused_before_connecting(
    api, alice, guard, fake_dns, listener, no_emulator
):
    fake_dns["emulator.example.test"] = "127.0.0.1"
    body = {
        "name": "P",
        "type": "pubsub",
        "provider_config": {"project_id": "p", "topic_id": "t", "endpoint": f"emulator.example.test:{listener.port}"},
    }
    created = post_json(api, "/v1/destinations", body)
    assert created.status_code == 201, created.content

    delivery = _deliver(alice.org, Destination.objects.get(pk=created.json()["id"]))

    _assert_refused(delivery)
    assert "emulator.example.test resolves to 127.0.0.1" in delivery.last_error
    assert listener.connections() == []


@pytest.mark.django_db
def test_the_emulator_of_the_environment_is_checked_too(alice, guard, listener, monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{listener.port}")
    destination = _row(alice.org, "pubsub", {"project_id": "p", "topic_id": "t"})

    _assert_refused(_deliver(alice.org, destination))
    assert listener.connections() == []


@pytest.mark.django_db
def test_a_token_uri_on_loopback_is_refused_before_connecting(alice, guard, listener, no_emulator, private_key):
    account = _service_account(private_key, f"http://127.0.0.1:{listener.port}/token")
    destination = _row(alice.org, "pubsub", {"project_id": "p", "topic_id": "t", "service_account_json": account})

    delivery = _deliver(alice.org, destination)

    _assert_refused(delivery)
    assert listener.connections() == []


class TokenServer:
    """An OAuth token endpoint on loopback that records each request."""

    def __init__(self):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "host": self.headers.get("Host"), "body": body.decode()})
                answer = json.dumps({"access_token": "token-1", "expires_in": 3600, "token_type": "Bearer"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_server():
    server = TokenServer()
    yield server
    server.close()


def test_the_token_exchange_goes_to_the_checked_address_with_its_host_name(
    settings, fake_dns, token_server, private_key
):

    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = True
    fake_dns["oauth.example.test"] = "127.0.0.1"
    info = _service_account(private_key, f"http://oauth.example.test:{token_server.port}/token")
    credentials = service_account.Credentials.from_service_account_info(info, scopes=pubsub_provider.SCOPES)

    credentials.refresh(outbound.google_auth_request())

    assert credentials.token == "token-1"
    (request,) = token_server.requests
    assert request["path"] == "/token"
    assert request["host"] == f"oauth.example.test:{token_server.port}"
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in request["body"]

    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(SSRFRefused, match="oauth.example.test resolves to 127.0.0.1"):
        credentials.refresh(outbound.google_auth_request())
    assert len(token_server.requests) == 1


@pytest.mark.django_db
def test_the_real_emulator_is_reached_at_the_checked_address(alice, request, settings, fake_dns, monkeypatch):
    topic_id, subscriber, sub_path = request.getfixturevalue("topic")
    emulator_port = int(request.getfixturevalue("emulator").rsplit(":", 1)[1])
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = True
    fake_dns["emulator.example.test"] = "127.0.0.1"
    checked = []
    real_check = outbound.check_target
    monkeypatch.setattr(
        outbound, "check_target", lambda host, port: checked.append((host, port)) or real_check(host, port)
    )
    destination = _row(
        alice.org,
        "pubsub",
        {"project_id": PROJECT, "topic_id": topic_id, "endpoint": f"emulator.example.test:{emulator_port}"},
    )

    delivery = _deliver(alice.org, destination)

    assert delivery.status == "succeeded", delivery.last_error
    assert checked == [("emulator.example.test", emulator_port)]
    (message,) = _pull(subscriber, sub_path)
    assert json.loads(message.data)["amount"] == 42
    pubsub_provider.forget(destination.pk)


# --- Pub/Sub: no ambient credentials unless the operator lends them --------------------------


@pytest.fixture
def ambient(monkeypatch):
    """google.auth.default answers anonymous credentials (there are no real ones here) and
    records its calls."""

    calls = []

    def default(*args, **kwargs):
        calls.append(kwargs)
        return AnonymousCredentials(), None

    monkeypatch.setattr(google.auth, "default", default)
    return calls


@pytest.mark.django_db
def test_without_credentials_a_pubsub_destination_is_refused(api, alice, guard, no_emulator, ambient):
    body = {"name": "P", "type": "pubsub", "provider_config": {"project_id": "p", "topic_id": "t"}}

    details = assert_error_body(post_json(api, "/v1/destinations", body), 400, "provider_config.service_account_json")[
        "details"
    ]
    assert "HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS" in details["provider_config.service_account_json"][0]

    delivery = _deliver(alice.org, _row(alice.org, "pubsub", {"project_id": "p", "topic_id": "t"}))
    _assert_refused(delivery, text="service_account_json is required")
    assert ambient == []


@pytest.mark.django_db
def test_with_ambient_credentials_allowed_the_client_uses_them_over_tls_to_the_checked_address(
    api, alice, settings, no_emulator, ambient, fake_dns, listener, monkeypatch
):
    settings.HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS = True
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = True
    # pubsub.googleapis.com, answered by the loopback listener instead of Google.
    fake_dns["pubsub.googleapis.com"] = "127.0.0.1"
    monkeypatch.setattr(pubsub_provider, "GOOGLE_ENDPOINT", ("pubsub.googleapis.com", listener.port))
    body = {"name": "P", "type": "pubsub", "provider_config": {"project_id": "p", "topic_id": "t"}}
    created = post_json(api, "/v1/destinations", body)
    assert created.status_code == 201, created.content
    destination = Destination.objects.get(pk=created.json()["id"])
    destination.timeout_ms = 1500
    destination.save(update_fields=["timeout_ms"])

    delivery = _deliver(alice.org, destination)

    assert ambient == [{"scopes": pubsub_provider.SCOPES}]
    assert delivery.status == "scheduled"  # nobody answers TLS there: retried
    hellos = listener.connections()  # gRPC may try more than once within the time-out
    assert hellos and all(hello[:1] == b"\x16" and b"pubsub.googleapis.com" in hello for hello in hellos)  # TLS, SNI
    pubsub_provider.forget(destination.pk)


@pytest.mark.django_db
def test_the_default_pubsub_endpoint_is_checked_too(
    alice, guard, no_emulator, ambient, fake_dns, listener, monkeypatch
):
    guard.HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS = True
    fake_dns["pubsub.googleapis.com"] = "127.0.0.1"
    monkeypatch.setattr(pubsub_provider, "GOOGLE_ENDPOINT", ("pubsub.googleapis.com", listener.port))
    destination = _row(alice.org, "pubsub", {"project_id": "p", "topic_id": "t"})

    delivery = _deliver(alice.org, destination)

    _assert_refused(delivery)
    assert "pubsub.googleapis.com resolves to 127.0.0.1" in delivery.last_error
    assert listener.connections() == []
