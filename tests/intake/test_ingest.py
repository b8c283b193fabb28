"""Ingest: what is stored, signatures, IP lists, limits and failure answers."""

import base64
import hashlib
import random
import socket
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connections
from standardwebhooks import Webhook

from deliveries.models import Delivery
from intake import selectors
from intake.models import Connection, Event, Source
from tests.factories import make_destination, make_source
from tests.intake.helpers import assert_error, hmac_hex, ingest, patch_json, post_json
from tests.support import require_postgres

WHSEC = "whsec_" + base64.b64encode(b"a-standard-webhooks-test-secret!").decode()


def _source_via_api(alice, **fields):
    response = post_json(alice.client(), "/v1/sources", {"name": "Vendor", **fields})
    assert response.status_code == 201, response.content
    return Source.objects.get(pk=response.json()["id"])


# --- what is stored ------------------------------------------------------------------------------


def test_it_stores_a_json_body_byte_exact_with_its_request(alice, client):
    source = make_source(alice.org)
    raw = b'{"b": 2,   "a": [1, 2.50, "\\u00e9"]}'
    response = ingest(client, source, raw, QUERY_STRING="x=1&tag=a&tag=b", HTTP_X_VENDOR_EVENT="order.created")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {"event_id": body["event_id"], "source_id": source.pk}
    event = Event.objects.get(pk=body["event_id"])
    assert bytes(event.body) == raw
    assert event.payload == {"b": 2, "a": [1, 2.5, "é"]}
    assert event.method == "POST"
    assert event.content_type == "application/json"
    assert event.headers["X-Vendor-Event"] == "order.created"
    assert event.query == {"x": "1", "tag": ["a", "b"]}
    assert event.source_ip == "127.0.0.1"
    assert event.body_size == len(raw)
    source.refresh_from_db()
    assert source.event_count == 1 and source.last_event_at == event.received_at


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_it_accepts_every_ingest_method(alice, client, method):
    source = make_source(alice.org)
    response = ingest(client, source, b"", method=method, content_type="")
    assert response.status_code == 200, response.content
    assert Event.objects.get().method == method.upper()


def test_it_stores_binary_and_form_bodies_without_parsing_them(alice, client):
    source = make_source(alice.org)
    binary = bytes(range(256)) * 3
    assert ingest(client, source, binary, content_type="application/octet-stream").status_code == 200
    form = b"a=1&b=%C3%A9"
    assert ingest(client, source, form, content_type="application/x-www-form-urlencoded").status_code == 200
    bad_json = b'{"a": '
    assert ingest(client, source, bad_json).status_code == 200
    stored = {bytes(e.body): e.payload for e in Event.objects.all()}
    assert stored == {binary: None, form: None, bad_json: None}


def test_it_keeps_a_body_with_a_nul_escape_unparsed_rather_than_failing(alice, client):
    source = make_source(alice.org)
    raw = b'{"a": "x\\u0000y"}'
    response = ingest(client, source, raw, QUERY_STRING="q=%00")
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert bytes(event.body) == raw and event.payload is None


def test_it_answers_413_above_the_body_limit(alice, client, settings):
    settings.HOOKSTREAM_MAX_BODY_BYTES = 100
    source = make_source(alice.org)
    assert ingest(client, source, b"x" * 100, content_type="text/plain").status_code == 200
    assert_error(ingest(client, source, b"x" * 101, content_type="text/plain"), 413)
    assert Event.objects.count() == 1


def test_it_answers_404_for_an_unknown_source_and_405_for_other_methods(alice, client):
    assert_error(ingest(client, "src_" + "0" * 32, {"a": 1}), 404)
    source = make_source(alice.org)
    response = client.options(f"/v1/ingest/{source.pk}")
    assert_error(response, 405)
    assert "POST" in response["Allow"]


def test_it_needs_no_api_key_and_ignores_one(alice, bob, client):
    source = make_source(alice.org)
    response = ingest(client, source, {"a": 1}, HTTP_X_API_KEY=bob.raw_key)
    assert response.status_code == 200
    assert Event.objects.get().organization_id == alice.org.pk


def test_it_answers_503_for_a_paused_source_and_stores_nothing(alice, client):
    source = make_source(alice.org, status="paused")
    response = ingest(client, source, {"a": 1})
    assert_error(response, 503)
    assert response["Retry-After"]
    assert Event.objects.count() == 0


def test_it_rate_limits_per_client_address(alice, client, settings):
    settings.HOOKSTREAM_INGEST_RATE_LIMIT_PER_MINUTE = 2
    source = make_source(alice.org)
    # A fresh address per run: the limiter's window lives in the shared cache.
    address = f"2001:db8:{random.randint(1, 0xFFFF):x}::{random.randint(1, 0xFFFF):x}"
    codes = [ingest(client, source, {"n": n}, REMOTE_ADDR=address).status_code for n in range(3)]
    assert codes == [200, 200, 429]
    other = ingest(client, source, {"n": 9}, REMOTE_ADDR=f"2001:db8::{random.randint(1, 0xFFFF):x}:1")
    assert other.status_code == 200
    assert Event.objects.count() == 3


# --- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "digest", "header", "prefix"),
    [
        ("hmac_sha256", hashlib.sha256, "X-Hub-Signature-256", "sha256="),
        ("hmac_sha1", hashlib.sha1, "X-Signature", ""),
    ],
)
def test_it_verifies_hmac_signatures(alice, client, kind, digest, header, prefix):
    source = _source_via_api(
        alice,
        verification_type=kind,
        verification_secret="old-secret",
        verification_header=header,
        verification_prefix=prefix,
    )
    body = b'{"id": "evt_1"}'
    meta = "HTTP_" + header.upper().replace("-", "_")
    # The secret is rotated: a signature made with the old one is stale.
    response = patch_json(alice.client(), f"/v1/sources/{source.pk}", {"verification_secret": "new-secret"})
    assert response.status_code == 200 and response.json()["verification_secret"] == "****cret"

    good = ingest(client, source, body, **{meta: prefix + hmac_hex("new-secret", body, digest)})
    assert good.status_code == 200, good.content
    base64_good = base64.b64encode(bytes.fromhex(hmac_hex("new-secret", body, digest))).decode()
    assert ingest(client, source, body, **{meta: prefix + base64_good}).status_code == 200

    stale = ingest(client, source, body, **{meta: prefix + hmac_hex("old-secret", body, digest)})
    bad = ingest(client, source, body, **{meta: prefix + hmac_hex("new-secret", body + b" ", digest)})
    missing = ingest(client, source, body)
    for response in (stale, bad, missing):
        assert_error(response, 401)
    # The prefix is stripped when present, not required (as the hosted product does).
    assert ingest(client, source, body, **{meta: hmac_hex("new-secret", body, digest)}).status_code == 200
    assert Event.objects.count() == 3
    source.refresh_from_db()
    assert source.verification_failure_count == 3


def test_it_verifies_standard_webhooks_signed_by_the_library(alice, client):
    source = _source_via_api(alice, verification_type="standard_webhooks", verification_secret=WHSEC)
    signer = Webhook(WHSEC)
    body = b'{"type": "invoice.paid"}'

    def headers(msg_id, when, signature):
        return {
            "HTTP_WEBHOOK_ID": msg_id,
            "HTTP_WEBHOOK_TIMESTAMP": str(int(when.timestamp())),
            "HTTP_WEBHOOK_SIGNATURE": signature,
        }

    now = datetime.now(tz=UTC)
    good = ingest(client, source, body, **headers("msg_1", now, signer.sign("msg_1", now, body.decode())))
    assert good.status_code == 200, good.content

    stale_time = now - timedelta(minutes=6)
    stale = ingest(
        client, source, body, **headers("msg_2", stale_time, signer.sign("msg_2", stale_time, body.decode()))
    )
    future = now + timedelta(minutes=6)
    too_new = ingest(client, source, body, **headers("msg_3", future, signer.sign("msg_3", future, body.decode())))
    other = Webhook("whsec_" + base64.b64encode(b"someone-else-entirely-0123456789").decode())
    bad = ingest(client, source, body, **headers("msg_4", now, other.sign("msg_4", now, body.decode())))
    tampered = ingest(client, source, body + b" ", **headers("msg_1", now, signer.sign("msg_1", now, body.decode())))
    garbled = ingest(client, source, body, **headers("msg_5", now, "v1,not base64!! v2"))
    binary = ingest(
        client, source, b"\xff\xfe", content_type="application/octet-stream", **headers("m", now, "v1,AA==")
    )
    for response in (stale, too_new, bad, tampered, garbled, binary):
        assert_error(response, 401)
    assert Event.objects.count() == 1
    source.refresh_from_db()
    assert source.verification_failure_count == 6


def test_it_stores_the_secret_encrypted_and_answers_it_masked(alice):
    api = alice.client()
    response = post_json(
        api,
        "/v1/sources",
        {"name": "GitHub", "verification_type": "hmac_sha256", "verification_secret": "topsecret-1234"},
    )
    assert response.status_code == 201
    assert response.json()["verification_secret"] == "****1234"
    stored = Source.objects.get().verification_secret
    assert stored.startswith("enc:v1:") and "topsecret" not in stored
    # Sending the masked value back keeps the secret.
    response = patch_json(
        api, f"/v1/sources/{response.json()['id']}", {"verification_secret": "****1234", "name": "GH"}
    )
    assert response.status_code == 200
    assert Source.objects.get().verification_secret == stored


# --- IP lists and the client address ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "deny", "address", "expected"),
    [
        (["203.0.113.0/24"], [], "203.0.113.9", 200),
        (["203.0.113.0/24"], [], "198.51.100.9", 403),
        (["2001:db8:abcd::/48"], [], "2001:db8:abcd:12::1", 200),
        (["2001:db8:abcd::/48"], [], "2001:db8:ffff::1", 403),
        (["2001:db8:abcd::/48"], [], "203.0.113.9", 403),  # an IPv4 client against an IPv6-only list
        ([], ["203.0.113.0/24"], "203.0.113.9", 403),
        ([], ["203.0.113.0/24"], "198.51.100.9", 200),
        ([], ["2001:db8::/32"], "2001:db8::7", 403),
        ([], ["2001:db8::/32"], "2001:db9::7", 200),
        (["10.0.0.0/8"], ["10.1.0.0/16"], "10.1.2.3", 403),  # deny wins
        (["10.0.0.0/8"], ["10.1.0.0/16"], "10.2.2.3", 200),
        (["192.0.2.1"], [], "192.0.2.1", 200),  # a bare address
        (["192.0.2.1"], [], "::ffff:192.0.2.1", 200),  # IPv4-mapped is the IPv4 address
    ],
)
def test_it_applies_ip_allow_and_deny_lists(alice, client, allow, deny, address, expected):
    source = _source_via_api(alice, ip_allowlist=allow, ip_denylist=deny)
    response = ingest(client, source, {"a": 1}, REMOTE_ADDR=address)
    assert response.status_code == expected, response.content
    if expected == 403:
        assert_error(response, 403)
    assert Event.objects.count() == (1 if expected == 200 else 0)


def test_it_trusts_only_the_configured_proxy_header(alice, client, settings):
    source = _source_via_api(alice, ip_allowlist=["203.0.113.0/24"])
    spoofed = {"HTTP_X_FORWARDED_FOR": "203.0.113.5", "REMOTE_ADDR": "10.0.0.2"}
    assert_error(ingest(client, source, {"a": 1}, **spoofed), 403)

    settings.HOOKSTREAM_TRUSTED_PROXY_HEADERS = ["X-Forwarded-For"]
    # The right-most address is the one the proxy appended; the rest is the client's say-so.
    response = ingest(
        client, source, {"a": 1}, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5", REMOTE_ADDR="10.0.0.2"
    )
    assert response.status_code == 200
    assert Event.objects.get().source_ip == "203.0.113.5"
    forged = ingest(client, source, {"a": 1}, HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.1", REMOTE_ADDR="10.0.0.2")
    assert_error(forged, 403)


# --- the database is unavailable ----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_when_the_database_is_down(alice, client, caplog):
    require_postgres()
    source = make_source(alice.org)
    db = connections["default"]
    saved = dict(db.settings_dict)
    db.close()
    db.settings_dict["PORT"] = _closed_port()  # nothing listens there: a stopped server
    try:
        with caplog.at_level("WARNING", logger="hookstream.api.exceptions"):
            response = ingest(client, source, {"a": 1})
    finally:
        db.close()
        db.settings_dict.clear()
        db.settings_dict.update(saved)
    assert_error(response, 503)
    assert Event.objects.count() == 0
    # An outage logs one line per request, not a traceback each.
    (record,) = [r for r in caplog.records if r.name == "hookstream.api.exceptions"]
    assert record.getMessage().startswith(f"database unavailable (ingest {source.pk}): ") and record.exc_info is None


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_when_the_database_dies_mid_request(alice, client, monkeypatch):
    """The server ends the session after the source was read: nothing is stored, no 2xx."""
    require_postgres()
    source = make_source(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=make_destination(alice.org))
    real_lookup = selectors.source_for_ingest

    def lookup_then_die(*, source_id):
        found = real_lookup(source_id=source_id)
        # Another session kills this one, as a server restart would; the writes come next.
        pid = connections["default"].connection.info.backend_pid
        settings_dict = connections["default"].settings_dict
        with psycopg.connect(
            dbname=settings_dict["NAME"],
            user=settings_dict["USER"],
            host=settings_dict["HOST"],
            port=settings_dict["PORT"],
            autocommit=True,
        ) as killer:
            assert killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        return found

    monkeypatch.setattr(selectors, "source_for_ingest", lookup_then_die)
    response = ingest(client, source, {"a": 1})
    assert_error(response, 503)
    connections["default"].close()
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0
