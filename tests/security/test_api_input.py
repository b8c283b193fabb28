"""Issue 12, input side of the API: findings 10 (NUL in a path id, JSON that jsonb refuses)
and 11 (oversized and deeply nested bodies), and gunicorn's own 414/431 answers.

Oversized bodies, request lines and headers go through gunicorn on loopback
(``gunicorn_server``): that is where they arrive in production.
"""

import json

import pytest

from intake.models import Source
from tests.factories import make_destination, make_event, make_source
from tests.intake.helpers import assert_error, post_json
from tests.security.gunicorn_server import Gunicorn
from tests.support import require_postgres

ONE_MIB = 1024 * 1024
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    require_postgres()
    with Gunicorn() as gunicorn:
        yield gunicorn


def _assert_error_body(status, headers, answer, expected_status):
    assert status == expected_status, answer[:300]
    assert headers["Content-Type"] == "application/json"
    body = json.loads(answer)
    assert body["status"] == expected_status and body["error"]
    assert "request_id" in body
    return body


# --- finding 11: oversized bodies -> 413 -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_api_body_is_a_413_with_the_error_body(alice, server, chunked):
    body = json.dumps({"name": "x" * (3 * ONE_MIB)}).encode()
    headers = {"X-API-Key": alice.raw_key, "Content-Type": "application/json"}
    for path in ("/v1/sources", "/v1/destinations", "/v1/connections", "/v1/topics"):
        status, answer_headers, answer = server.request("POST", path, body, headers, chunked=chunked)
        error = _assert_error_body(status, answer_headers, answer, 413)
        assert error["error"] == f"The body is larger than {ONE_MIB} bytes."
        assert error["request_id"] == answer_headers["X-Request-Id"]
    assert Source.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_chunked_api_body_within_the_limit_is_read(alice, server):
    headers = {"X-API-Key": alice.raw_key, "Content-Type": "application/json"}
    status, _headers, answer = server.request("POST", "/v1/sources", b'{"name": "Chunky"}', headers, chunked=True)
    assert status == 201, answer
    assert Source.objects.get().name == "Chunky"


# --- finding 11: deep nesting -> 400 -----------------------------------------------------------


def _endpoints(alice):
    source = make_source(alice.org)
    destination = make_destination(alice.org)
    topic = post_json(alice.client(), "/v1/topics", {"name": "Orders"}).json()
    return [
        ("post", "/v1/sources"),
        ("patch", f"/v1/sources/{source.pk}"),
        ("post", "/v1/destinations"),
        ("patch", f"/v1/destinations/{destination.pk}"),
        ("post", "/v1/connections"),
        ("post", "/v1/topics"),
        ("post", f"/v1/topics/{topic['id']}/subscriptions"),
        ("post", f"/v1/topics/{topic['slug']}/publish"),
    ]


def test_a_100000_deep_body_is_a_400_on_every_endpoint(alice, api):
    for method, path in _endpoints(alice):
        response = getattr(api, method)(path, data=DEEP, content_type="application/json")
        assert_error(response, 400)


# --- finding 10: JSON that jsonb refuses -> 400 naming the field -------------------------------------


@pytest.mark.parametrize(
    "text",
    ['{"name": "a\\ud800"}', '{"name": "a\\u0000"}', '{"name": "a", "description": NaN}', '{"name": 1e999}'],
    ids=["lone surrogate", "NUL", "NaN", "1e999"],
)
def test_json_the_database_cannot_store_is_a_400_not_a_503(api, text):
    response = post_json(api, "/v1/sources", text)
    body = assert_error(response, 400)
    assert "database" not in body["error"].lower()
    assert Source.objects.count() == 0


def test_the_400_names_the_field_that_cannot_be_stored(api):
    response = post_json(api, "/v1/sources", '{"name": "ok", "ip_allowlist": ["10.0.0.1", "\\udc00"]}')
    body = assert_error(response, 400, "ip_allowlist")
    assert "ip_allowlist[1]" in body["details"]["ip_allowlist"][0]


# --- finding 10: NUL in a detail path id -> 404 --------------------------------------------------

API_DETAIL_PATHS = [
    "/v1/sources/src_%00",
    "/v1/destinations/dst_%00",
    "/v1/destinations/dst_%00/circuit",
    "/v1/connections/con_%00",
    "/v1/topics/top_%00",
    "/v1/events/evt_%00",
    "/v1/delivery-attempts/att_%00",
    "/v1/auth/api-keys/key_%00",
    "/v1/ingest/src_%00",
]
CONSOLE_DETAIL_PATHS = ["/sources/src_%00/", "/destinations/dst_%00/", "/events/evt_%00/", "/topics/top_%00/"]


def test_a_nul_in_an_api_detail_id_is_a_404(alice, api, client):
    make_event(alice.org)
    for path in API_DETAIL_PATHS:
        assert_error(api.get(path), 404)
    assert_error(client.post("/v1/ingest/src_%00", data=b"{}", content_type="application/json"), 404)


def test_a_nul_in_a_console_detail_id_is_a_404(alice):
    client = alice.session_client()
    for path in CONSOLE_DETAIL_PATHS:
        assert client.get(path).status_code == 404, path


# --- gunicorn's own limits: request line and headers --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_oversized_request_line_or_header_is_answered_in_json(server):
    status, headers, answer = server.request("GET", "/v1/sources?q=" + "x" * 5000)
    body = _assert_error_body(status, headers, answer, 414)
    assert body["request_id"] is None  # answered by gunicorn, before any request id exists
    status, headers, answer = server.request("GET", "/v1/sources", headers={"X-Big": "y" * 9000})
    _assert_error_body(status, headers, answer, 431)
    many = {f"X-H{n}": "1" for n in range(101)}
    status, headers, answer = server.request("GET", "/v1/sources", headers=many)
    _assert_error_body(status, headers, answer, 431)
