"""Issue 12, input side of ingest: findings 6 (chunked bodies) and 10 (JSON that jsonb
refuses), credential headers stored masked, IPv4-mapped IP-list entries.

The chunked and oversized cases go through gunicorn on loopback (``gunicorn_server``), as
a real sender's request would.
"""

import hashlib
import hmac
import json

import pytest

from deliveries import tasks
from deliveries.engine import process_delivery
from deliveries.models import Delivery
from hookstream import crypto
from intake.models import Connection, Event
from tests.factories import make_destination, make_source
from tests.intake.helpers import assert_error, ingest
from tests.intake.test_end_to_end import receiver  # noqa: F401 (a fixture)
from tests.security.gunicorn_server import Gunicorn
from tests.support import require_postgres

ONE_MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    require_postgres()
    with Gunicorn() as gunicorn:
        yield gunicorn
    # gunicorn's connections are gone; the test database can be dropped at the end.


# --- finding 6: chunked bodies -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_chunked_ingest_body_is_stored_and_delivered_whole(alice, server, receiver, monkeypatch):  # noqa: F811
    monkeypatch.setattr(tasks.deliver, "delay", lambda delivery_id: None)
    base, received = receiver
    source = make_source(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=make_destination(alice.org, url=base))
    body = json.dumps({"type": "order.created", "lines": ["x" * 100] * 5000}).encode()  # ~540 kB, 9 chunks
    status, _headers, answer = server.request(
        "POST", f"/v1/ingest/{source.pk}", body, {"Content-Type": "application/json"}, chunked=True
    )
    assert status == 200, answer
    event = Event.objects.get(pk=json.loads(answer)["event_id"])
    assert bytes(event.body) == body and event.body_size == len(body)
    assert event.payload["type"] == "order.created"
    process_delivery(Delivery.objects.get(event=event).pk)
    assert received == [("/", "application/json", body)]


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_above_the_limit_is_refused_with_413_and_nothing_stored(alice, server):
    source = make_source(alice.org)
    body = b"x" * (2 * ONE_MIB)
    status, headers, answer = server.request(
        "POST", f"/v1/ingest/{source.pk}", body, {"Content-Type": "text/plain"}, chunked=True
    )
    assert status == 413, answer
    assert json.loads(answer) == {
        "error": f"The body is larger than {ONE_MIB} bytes.",
        "status": 413,
        "request_id": headers["X-Request-Id"],
    }
    # Exactly the limit is accepted.
    status, _headers, answer = server.request(
        "POST", f"/v1/ingest/{source.pk}", b"y" * ONE_MIB, {"Content-Type": "text/plain"}, chunked=True
    )
    assert status == 200, answer
    assert [e.body_size for e in Event.objects.all()] == [ONE_MIB]


@pytest.mark.django_db(transaction=True)
def test_a_declared_oversized_body_is_refused_before_it_is_sent(alice, server):
    source = make_source(alice.org)
    head = (
        f"POST /v1/ingest/{source.pk} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {3 * ONE_MIB}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = server.raw(head + b"z" * 1000)  # the rest never comes: the answer must not wait for it
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert Event.objects.count() == 0


# --- finding 10: JSON that PostgreSQL's jsonb refuses ----------------------------------------------

AWKWARD_JSON = {
    "lone surrogate": b'{"a": "\\ud800"}',
    "lone surrogate in a key": b'{"\\udfff": 1}',
    "NaN": b'{"a": NaN}',
    "Infinity": b'{"a": Infinity}',
    "-Infinity": b'{"a": [-Infinity]}',
    "1e999": b'{"a": 1e999}',
    "NUL in a string": b'{"a": {"b": "x\\u0000y"}}',
    "100 000 levels deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("body", AWKWARD_JSON.values(), ids=AWKWARD_JSON.keys())
def test_json_the_database_cannot_store_is_kept_raw_with_a_null_payload(alice, client, body):
    source = make_source(alice.org)
    response = ingest(client, source, body)
    assert response.status_code == 200, response.content
    event = Event.objects.get(pk=response.json()["event_id"])
    assert bytes(event.body) == body and event.payload is None


def test_json_the_database_can_store_is_still_parsed(alice, client):
    source = make_source(alice.org)
    body = (
        b'{"emoji": "\\ud83d\\ude00", "big": 1e300, "escaped": "\\\\u0000", "deep": ' + b"[" * 150 + b"]" * 150 + b"}"
    )
    response = ingest(client, source, body)
    assert response.status_code == 200, response.content
    payload = Event.objects.get().payload
    assert payload["emoji"] == "\U0001f600" and float(payload["big"]) == 1e300 and payload["escaped"] == "\\u0000"


# --- credential headers are stored masked -------------------------------------------------------


def test_credential_headers_of_an_ingest_request_are_stored_and_shown_masked(alice, client):
    source = make_source(alice.org, verification_type="hmac_sha256", verification_secret=crypto.encrypt("shh-secret"))
    body = b'{"a": 1}'
    signature = hmac.new(b"shh-secret", body, hashlib.sha256).hexdigest()
    secrets = {
        "HTTP_AUTHORIZATION": "Bearer sk_live_abcdefgh12345678",
        "HTTP_COOKIE": "session=cookie-value-9876",
        "HTTP_PROXY_AUTHORIZATION": "Basic cHJveHk6cGFzc3dvcmQ=",
        "HTTP_X_API_KEY": "hs_key_should_not_be_kept",
        "HTTP_X_HUB_SIGNATURE_256": signature,
    }
    response = ingest(client, source, body, HTTP_X_VENDOR="kept", **secrets)
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    stored = {name.lower(): value for name, value in event.headers.items()}
    for name in ("authorization", "cookie", "proxy-authorization", "x-api-key", "x-hub-signature-256"):
        assert stored[name] == "****", name
    assert stored["x-vendor"] == "kept"
    # Neither the API's event detail nor the console's shows any of the values.
    api_detail = alice.client().get(f"/v1/events/{event.pk}").content
    console_detail = alice.session_client().get(f"/events/{event.pk}/").content
    for value in secrets.values():
        for shown in (api_detail, console_detail):
            assert value.encode() not in shown and value[-8:].encode() not in shown


# --- IP lists written in the IPv4-mapped IPv6 form -------------------------------------------------


def test_ip_list_entries_in_the_ipv4_mapped_form_match_the_ipv4_client(alice, client):
    allowed = make_source(alice.org, ip_allowlist=["::ffff:127.0.0.1"])
    assert ingest(client, allowed, {"a": 1}, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert ingest(client, allowed, {"a": 1}, REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert_error(ingest(client, allowed, {"a": 1}, REMOTE_ADDR="127.0.0.2"), 403)
    denied = make_source(alice.org, ip_denylist=["::ffff:10.0.0.0/104"])
    assert_error(ingest(client, denied, {"a": 1}, REMOTE_ADDR="10.9.8.7"), 403)
    assert ingest(client, denied, {"a": 1}, REMOTE_ADDR="11.0.0.1").status_code == 200
