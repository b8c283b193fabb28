"""Property-based tests from the OpenAPI document (schemathesis): generated valid and invalid
requests to every destination and API-key operation never get a 5xx, and every answer
matches what the document says (status codes, content type, headers, body schema)."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hookstream import services
from tests.factories import make_destination

# Not "positive data acceptance": schema-valid input can still break a rule the schema cannot
# express (an http destination needs a url; a cursor must be one we issued).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# The operations of the Destinations API and the API keys (deliveries' routes under
# /v1/destinations/{id}/… are tested by their own app).
OURS = {
    "/v1/destinations",
    "/v1/destinations/{id}",
    "/v1/destinations/templates",
    "/v1/destinations/{id}/circuit",
    "/v1/destinations/{id}/circuit/reset",
    "/v1/auth/api-keys",
    "/v1/auth/api-keys/{id}",
}


@pytest.fixture
def session(alice) -> dict:
    """Cookies and headers of alice's signed-in session with its CSRF token. (Made before
    ``wsgi_app``: the test client reconnects the signal that fixture disconnects.)"""
    client = Client()
    client.force_login(alice.user)
    client.get("/admin/login/")  # sets the csrftoken cookie
    return {name: morsel.value for name, morsel in client.cookies.items()}


@pytest.fixture
def wsgi_app(session):
    """The WSGI app, called in-process like Django's test client does: the request must not
    close the test's database connection (whose transaction every test runs in)."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def operations(wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", wsgi_app)
    found = [result.ok() for result in schema.get_all_operations()]
    ours = [op for op in found if op.path in OURS]
    assert {op.path for op in ours} == OURS
    # Deletes last: they remove the destination the other operations work on.
    return sorted(ours, key=lambda op: op.method.lower() == "delete")


def _fuzz(operation, mode, path_parameters, *, headers=None, cookies=None, examples=25):
    strategy = operation.as_strategy(mode, path_parameters=path_parameters or None)

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        if cookies:
            # The session replaces whatever cookie was generated for the cookieAuth scheme.
            case.cookies = dict(cookies)
            headers_sent = {**(headers or {}), "X-CSRFToken": cookies["csrftoken"]}
        else:
            headers_sent = headers
        response = case.call(headers=headers_sent)
        case.validate_response(response, headers=headers_sent, checks=CHECKS)

    run()


@pytest.mark.slow
def test_it_never_answers_5xx_and_always_matches_the_document(alice, session, operations):
    destination = make_destination(alice.org, url="https://hooks.example.com/in")
    spare_key, _ = services.api_key_create(organization=alice.org, name="to revoke")
    key_headers = {"X-API-Key": alice.raw_key}

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if operation.path.startswith("/v1/auth/api-keys"):
                # Managed with a session only.
                parameters = {"id": spare_key.id} if "{id}" in operation.path else {}
                _fuzz(operation, mode, parameters, cookies=session)
            else:
                parameters = {"id": destination.id} if "{id}" in operation.path else {}
                _fuzz(operation, mode, parameters, headers=key_headers)
