"""Tenant isolation, generated from the URL configuration: for every ``/v1/`` route with an id
in its path and every method its view allows, bob calling it with alice's id gets a 404 with
the error body, and none of alice's rows changes.

The routes are found by walking the resolver, so a new id route is covered the moment it is
added, or fails ``test_every_id_route_is_mapped`` until its ids are added to ``ROUTES``."""

import re

import pytest
from django.apps import apps
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import make_one_of_everything

# Routes under v1/ that are not authenticated by an organization's credentials.
PUBLIC = {"/v1/ingest/{source_id}"}
METHODS = ("get", "put", "patch", "post", "delete")
_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)")

# Each id route and, for each of its parameters, the name of alice's object whose id fills it.
ROUTES = {
    "/v1/auth/api-keys/{pk}": {"pk": "api_key"},
    "/v1/destinations/{pk}": {"pk": "destination"},
    "/v1/destinations/{pk}/circuit": {"pk": "destination"},
    "/v1/destinations/{pk}/circuit/reset": {"pk": "destination"},
    "/v1/destinations/{pk}/dead-letters": {"pk": "destination"},
    "/v1/destinations/{pk}/dead-letters/retry": {"pk": "destination"},
    "/v1/destinations/{pk}/test": {"pk": "destination"},
    "/v1/sources/{pk}": {"pk": "source"},
    "/v1/connections/{pk}": {"pk": "connection"},
    "/v1/topics/{pk}": {"pk": "topic"},
    "/v1/topics/{pk}/publish": {"pk": "topic"},
    "/v1/topics/{pk}/subscriptions": {"pk": "topic"},
    "/v1/topics/{pk}/subscriptions/{subscription_id}": {"pk": "topic", "subscription_id": "subscription"},
    "/v1/events/{pk}": {"pk": "event"},
    "/v1/events/{pk}/retry": {"pk": "event"},
    "/v1/delivery-attempts/{pk}": {"pk": "attempt"},
    "/v1/delivery-attempts/{pk}/retry": {"pk": "attempt"},
    "/v1/replay/{pk}": {"pk": "replay_job"},
    "/v1/issues/{pk}": {"pk": "issue"},
    "/v1/issues/{pk}/retry": {"pk": "issue"},
    "/v1/alert-rules/{pk}": {"pk": "alert_rule"},
    "/v1/notification-channels/{pk}": {"pk": "notification_channel"},
    "/v1/notification-channels/{pk}/test": {"pk": "notification_channel"},
}
# Extra fills: the publish route also takes the topic's slug.
ALTERNATIVES = {"/v1/topics/{pk}/publish": [{"pk": "topic_slug"}]}
# A body that would be accepted were the id bob's, so a 404 is not a 400 in disguise.
BODIES = {
    "/v1/destinations/{pk}": {"name": "Stolen", "type": "http", "url": "https://bob.example.com/"},
    "/v1/sources/{pk}": {"name": "Stolen"},
    "/v1/connections/{pk}": {"enabled": False},
    "/v1/topics/{pk}": {"name": "Stolen", "slug": "stolen"},
    "/v1/topics/{pk}/publish": {"type": "stolen"},
    "/v1/topics/{pk}/subscriptions/{subscription_id}": {"filter_rules": []},
    "/v1/destinations/{pk}/dead-letters/retry": {},
    "/v1/issues/{pk}": {"status": "resolved"},
    "/v1/alert-rules/{pk}": {"name": "Stolen"},
    "/v1/notification-channels/{pk}": {"name": "Stolen"},
}


def _normalise(pattern: str) -> str:
    pattern = pattern.replace("^", "").replace("$", "").replace("/?", "/")
    return "/" + _PARAM.sub(lambda m: "{" + m.group(1) + "}", pattern).rstrip("/")


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _methods(callback) -> list[str]:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    allowed = set(view.http_method_names)
    actions = getattr(callback, "actions", None)  # a ViewSet's route
    if actions:
        return [m for m in METHODS if m in actions and m in allowed]
    return [m for m in METHODS if hasattr(view, m) and m in allowed]


def id_routes() -> dict[str, list[str]]:
    """Every ``/v1/`` route with a path parameter, with the methods its view allows."""
    found: dict[str, list[str]] = {}
    for pattern, callback in _walk(get_resolver().url_patterns):
        path = _normalise(pattern)
        if not path.startswith("/v1/") or "{" not in path or path in PUBLIC:
            continue
        found.setdefault(path, [])
        found[path] += [m for m in _methods(callback) if m not in found[path]]
    return found


ROUTE_METHODS = id_routes()
CASES = [(path, method) for path, methods in sorted(ROUTE_METHODS.items()) for method in methods]


def test_every_id_route_is_mapped():
    """A new id route must be given alice's ids here, or it would escape the isolation suite."""
    assert set(ROUTE_METHODS) == set(ROUTES), "add the new routes to ROUTES (and remove the old)"
    for path, params in ROUTES.items():
        assert set(re.findall(r"{(\w+)}", path)) == set(params), path
    assert all(ROUTE_METHODS.values())
    # Every method the brief names is exercised somewhere.
    assert {"get", "patch", "post", "delete"} <= {method for _, method in CASES}


@pytest.fixture
def alice_objects(alice) -> dict:
    rows = make_one_of_everything(alice.org)
    ids = {kind: row.pk for kind, row in rows.items()}
    ids["topic_slug"] = rows["topic"].slug
    return ids


def snapshot(org) -> dict:
    """Every row of ``org`` in the tenant's apps, as plain dicts."""
    rows = {}
    for label in ("hookstream", "destinations", "intake", "deliveries"):
        for model in apps.get_app_config(label).get_models():
            names = {field.name for field in model._meta.get_fields()}
            if "organization" in names:
                queryset = model.objects.filter(organization=org)
            elif "destination" in names:
                queryset = model.objects.filter(destination__organization=org)
            elif "source" in names:
                queryset = model.objects.filter(source__organization=org)
            else:
                continue
            for row in queryset.order_by("pk"):
                rows[(model._meta.label, row.pk)] = model_to_dict(row)
    return rows


def _fill(path: str, params: dict[str, str], objects: dict) -> str:
    return path.format(**{name: objects[key] for name, key in params.items()})


@pytest.mark.parametrize(("path", "method"), CASES, ids=[f"{m.upper()} {p}" for p, m in CASES])
def test_bob_gets_404_for_alices_ids_and_changes_nothing(alice, bob, alice_objects, path, method):
    client = bob.session_client() if path.startswith("/v1/auth/") else bob.client()
    before = snapshot(alice.org)
    assert before, "alice has rows to protect"
    for params in [ROUTES[path], *ALTERNATIVES.get(path, [])]:
        url = _fill(path, params, alice_objects)
        kwargs = {}
        if method in {"put", "patch", "post"}:
            kwargs = {"data": BODIES.get(path, {}), "format": "json"}
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code == 404, f"{method.upper()} {url}: {response.status_code} {response.content!r}"
        body = response.json()
        assert body["status"] == 404
        assert isinstance(body["error"], str) and body["error"]
        assert body["request_id"] == response["X-Request-Id"]
    assert snapshot(alice.org) == before


GET_ROUTES = sorted(path for path, methods in ROUTE_METHODS.items() if "get" in methods)


@pytest.mark.parametrize("path", GET_ROUTES)
def test_the_same_ids_work_for_alice(alice, alice_objects, path):
    """The control: the ids bob is refused are real, so his 404s are not for a typo."""
    client = alice.session_client() if path.startswith("/v1/auth/") else alice.client()
    response = client.get(_fill(path, ROUTES[path], alice_objects))
    assert response.status_code == 200, response.content
