"""Property-based tests from the OpenAPI document (schemathesis): generated valid and invalid
requests to every destination and API-key operation never get a 5xx, and every answer
matches what the document says (status codes, content type, headers, body schema)."""

import pytest
from schemathesis import GenerationMode

from hookstream import services
from tests.factories import make_destination
from tests.openapi_support import (
    fuzz,
    load_operations,
    session_cookies,
    wsgi_app,  # noqa: F401  (a fixture)
)

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
    return session_cookies(alice)


@pytest.fixture
def operations(session, wsgi_app):  # noqa: F811
    return load_operations(wsgi_app, OURS)


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
                fuzz(operation, mode, parameters, cookies=session, examples=25)
            else:
                parameters = {"id": destination.id} if "{id}" in operation.path else {}
                fuzz(operation, mode, parameters, headers=key_headers, examples=25)
