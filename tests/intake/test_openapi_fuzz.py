"""Property-based tests from the OpenAPI document (schemathesis): generated valid and invalid
requests to every intake operation never get a 5xx, and every answer matches what the
document says (status codes, content type, headers, body schema)."""

import pytest
from schemathesis import GenerationMode

from intake.models import Connection, Subscription, Topic
from tests.factories import make_destination, make_event, make_source
from tests.openapi_support import (
    fuzz,
    load_operations,
    wsgi_app,  # noqa: F401  (a fixture)
)

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
def operations(wsgi_app):  # noqa: F811
    return load_operations(wsgi_app, OURS)


@pytest.mark.slow
def test_it_never_answers_5xx_and_always_matches_the_document(alice, operations):
    source = make_source(alice.org)
    destination = make_destination(alice.org)
    connection = Connection.objects.create(organization=alice.org, source=source, destination=destination)
    topic = Topic.objects.create(organization=alice.org, name="Orders", slug="orders")
    subscription = Subscription.objects.create(organization=alice.org, topic=topic, destination=destination)
    event = make_event(alice.org, source=source)
    # Ingest gets a source of its own: the fuzzer may PATCH the other one to "paused", and a
    # paused source answers 503 by design (senders retry later).
    ingest_source = make_source(alice.org, name="Ingest only")
    Connection.objects.create(organization=alice.org, source=ingest_source, destination=destination)
    ids = {
        "/v1/sources/{id}": {"id": source.pk},
        "/v1/connections/{id}": {"id": connection.pk},
        "/v1/topics/{id}": {"id": topic.pk},
        "/v1/topics/{id}/subscriptions": {"id": topic.pk},
        "/v1/topics/{id}/subscriptions/{subscription_id}": {"id": topic.pk, "subscription_id": subscription.pk},
        "/v1/topics/{id}/publish": {"id": topic.slug},
        "/v1/events/{id}": {"id": event.pk},
        "/v1/ingest/{source_id}": {"source_id": ingest_source.pk},
    }
    headers = {"X-API-Key": alice.raw_key}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode == GenerationMode.NEGATIVE and operation.path.startswith("/v1/ingest"):
                continue  # a fixed source id and a body of any bytes: nothing can be made invalid
            fuzz(operation, mode, ids.get(operation.path, {}), headers=headers, examples=20)
