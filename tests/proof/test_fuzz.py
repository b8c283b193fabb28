"""schemathesis over every operation of ``/v1/openapi.json`` with a real API key (or alice's
session where the document asks for one): generated valid and invalid requests never get a
5xx, and every answer matches the document. One test per operation, a few examples each
(a few hundred in all, bounded time); the per-app suites go deeper on their own operations."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from schemathesis import GenerationMode

from tests.factories import make_one_of_everything
from tests.openapi_support import (
    fuzz,
    load_operations,
    session_cookies,
    wsgi_app,  # noqa: F401  (a fixture)
)

EXAMPLES = 4  # per operation and mode
METHODS = {"get", "put", "patch", "post", "delete"}
# Operations whose bug is known and not yet fixed: (method, path) -> reason.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _document_operations() -> list[tuple[str, str]]:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS and path.startswith("/v1/")
    )


OPERATIONS = _document_operations()


def _param(method, path):
    marks = []
    if (method, path) in KNOWN_BUGS:
        marks.append(pytest.mark.xfail(reason=KNOWN_BUGS[(method, path)], strict=True))
    return pytest.param(method, path, marks=marks, id=f"{method} {path}")


@pytest.fixture
def session(alice) -> dict:
    return session_cookies(alice)


@pytest.fixture
def ids(alice) -> dict[str, dict[str, str]]:
    """The path parameters of each templated path: alice's own rows."""
    rows = make_one_of_everything(alice.org)
    source, subscription = rows["source"], rows["subscription"]
    by_prefix = {
        "/v1/auth/api-keys/": rows["api_key"].pk,
        "/v1/destinations/": rows["destination"].pk,
        "/v1/sources/": source.pk,
        "/v1/connections/": rows["connection"].pk,
        "/v1/topics/": rows["topic"].pk,
        "/v1/events/": rows["event"].pk,
        "/v1/delivery-attempts/": rows["attempt"].pk,
        "/v1/replay/": rows["replay_job"].pk,
        "/v1/issues/": rows["issue"].pk,
        "/v1/alert-rules/": rows["alert_rule"].pk,
        "/v1/notification-channels/": rows["notification_channel"].pk,
    }
    found = {}
    for _, path in OPERATIONS:
        if "{" not in path:
            continue
        parameters = {}
        if "{source_id}" in path:
            parameters["source_id"] = source.pk
        if "{subscription_id}" in path:
            parameters["subscription_id"] = subscription.pk
        if "{id}" in path:
            parameters["id"] = next(value for prefix, value in by_prefix.items() if path.startswith(prefix))
        found[path] = parameters
    return found


def test_the_document_has_every_operation():
    assert len(OPERATIONS) >= 40
    assert ("POST", "/v1/ingest/{source_id}") in OPERATIONS
    assert set(KNOWN_BUGS) <= set(OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), [_param(m, p) for m, p in OPERATIONS])
def test_no_5xx_and_every_answer_matches_the_document(alice, session, ids, wsgi_app, method, path):  # noqa: F811
    (operation,) = [op for op in load_operations(wsgi_app, {path}) if op.method.upper() == method]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        if mode == GenerationMode.NEGATIVE and path.startswith("/v1/ingest/"):
            continue  # a fixed source id and a body of any bytes: nothing can be made invalid
        parameters = ids.get(path, {})
        if path.startswith("/v1/auth/api-keys"):
            fuzz(operation, mode, parameters, cookies=session, examples=EXAMPLES)  # a session only
        else:
            fuzz(operation, mode, parameters, headers={"X-API-Key": alice.raw_key}, examples=EXAMPLES)
