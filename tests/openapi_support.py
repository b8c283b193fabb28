"""Shared machinery of the schemathesis tests: the in-process WSGI app, the checks, the
operations of ``/v1/openapi.json`` and one bounded hypothesis run per operation and mode."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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


def session_cookies(tenant) -> dict:
    """Cookies of ``tenant``'s signed-in session with its CSRF token. (Make them before the
    ``wsgi_app`` fixture: the test client reconnects the signal that fixture disconnects.)"""
    client = Client()
    client.force_login(tenant.user)
    client.get("/admin/login/")  # sets the csrftoken cookie
    return {name: morsel.value for name, morsel in client.cookies.items()}


@pytest.fixture
def wsgi_app(db):
    """The WSGI app, called in-process like Django's test client does: the request must not
    close the test's database connection (whose transaction every test runs in)."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


def load_operations(wsgi_app, paths: set[str] | None = None) -> list:
    """The operations of the document (those of ``paths`` when given, all of which must be
    there), deletes last: they remove the rows the other operations work on."""
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", wsgi_app)
    found = [result.ok() for result in schema.get_all_operations()]
    if paths is not None:
        found = [op for op in found if op.path in paths]
        assert {op.path for op in found} == paths
    return sorted(found, key=lambda op: op.method.lower() == "delete")


def fuzz(operation, mode, path_parameters, *, headers=None, cookies=None, examples=20):
    """``examples`` generated requests of ``mode`` to ``operation``, each checked by CHECKS."""
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
