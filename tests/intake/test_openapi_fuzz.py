"""Property-based tests from the OpenAPI document (schemathesis): generated valid and invalid
requests to every intake operation never get a 5xx, and every answer matches what the
document says (status codes, content type, headers, body schema)."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
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

from intake.models import Connection, Subscription, Topic
from tests.factories import make_destination, make_event, make_source

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OURS = {
    "/v1/sources",
    "/v1/sources/{id}",
    "/v1/connections",
    "/v1/connections/{id}",
    "/v1/topics",
    "/v1/topics/{id}",
    "/v1/topics/{id}/subscriptions",
    "/v1/topics/{id}/subscriptions/{subscription_id}",
    "/v1/topics/{id}/publish",
    "/v1/events",
    "/v1/events/{id}",
    "/v1/ingest/{source_id}",
}


@pytest.fixture
def wsgi_app(db):
    """The WSGI app, called in-process: a request must not close the test's connection."""
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
    # Deletes last: they remove the rows the other operations work on.
    return sorted(ours, key=lambda op: op.method.lower() == "delete")


def _fuzz(operation, mode, path_parameters, headers, examples=20):
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
        response = case.call(headers=headers)
        case.validate_response(response, headers=headers, checks=CHECKS)

    run()


@pytest.mark.slow
def test_it_never_answers_5xx_and_always_matches_the_document(alice, operations):
    source = make_source(alice.org)
    destination = make_destination(alice.org)
    connection = Connection.objects.create(organization=alice.org, source=source, destination=destination)
    topic = Topic.objects.create(organization=alice.org, name="Orders", slug="orders")
    subscription = Subscription.objects.create(organization=alice.org, topic=topic, destination=destination)
    event = make_event(alice.org, source=source)
    ids = {
        "/v1/sources/{id}": {"id": source.pk},
        "/v1/connections/{id}": {"id": connection.pk},
        "/v1/topics/{id}": {"id": topic.pk},
        "/v1/topics/{id}/subscriptions": {"id": topic.pk},
        "/v1/topics/{id}/subscriptions/{subscription_id}": {"id": topic.pk, "subscription_id": subscription.pk},
        "/v1/topics/{id}/publish": {"id": topic.slug},
        "/v1/events/{id}": {"id": event.pk},
        "/v1/ingest/{source_id}": {"source_id": source.pk},
    }
    headers = {"X-API-Key": alice.raw_key}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode == GenerationMode.NEGATIVE and operation.path.startswith("/v1/ingest"):
                continue  # a fixed source id and a body of any bytes: nothing can be made invalid
            _fuzz(operation, mode, ids.get(operation.path, {}), headers)
