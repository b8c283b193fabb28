"""Ingest keeps each source and its routes in the process, keyed by the organization's routing
version (``hookstream.versions``): a known source costs no query, and any change to what routes
its events is seen by the next request, whichever process made it."""

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries import dispatch
from deliveries.models import Delivery
from deliveries.services import destination_delete
from destinations.services import destination_update
from hookstream import versions
from intake import selectors
from intake.models import Connection
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest
from tests.support import require_redis


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(dispatch, "destination_wake", lambda destination_id, force=False: None)


def _selects(client, source, body=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert ingest(client, source, body or {"n": 1}).status_code == 200
    return sum(1 for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT"))


def _ingest_routes(client, source) -> set[str]:
    before = set(Delivery.objects.values_list("pk", flat=True))
    assert ingest(client, source, {"n": 1}).status_code == 200
    return set(Delivery.objects.exclude(pk__in=before).values_list("destination_id", flat=True))


def test_it_reads_a_known_source_from_memory_without_a_query(alice, client):
    require_redis()
    source = make_source(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=make_destination(alice.org))
    ingest(client, source, {"n": 0})  # learns the source's organization
    ingest(client, source, {"n": 0})  # reads it under the current version
    assert _selects(client, source) == 0
    assert Delivery.objects.count() == 3


def test_it_sees_a_new_connection_at_once(alice, client):
    require_redis()
    source = make_source(alice.org)
    first = make_destination(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=first)
    assert _ingest_routes(client, source) == {first.pk}
    assert _ingest_routes(client, source) == {first.pk}
    second = make_destination(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=second)
    assert _ingest_routes(client, source) == {first.pk, second.pk}


def test_it_sees_a_paused_or_deleted_destination_and_a_changed_filter_at_once(alice, client):
    require_redis()
    source = make_source(alice.org)
    kept, paused, deleted = (make_destination(alice.org) for _ in range(3))
    for destination in (kept, paused, deleted):
        Connection.objects.create(organization=alice.org, source=source, destination=destination)
    assert _ingest_routes(client, source) == {kept.pk, paused.pk, deleted.pk}
    assert _ingest_routes(client, source) == {kept.pk, paused.pk, deleted.pk}

    destination_update(destination=paused, data={"status": "paused"})
    assert _ingest_routes(client, source) == {kept.pk, deleted.pk}
    assert _ingest_routes(client, source) == {kept.pk, deleted.pk}
    destination_delete(destination=deleted)  # a queryset update: no post_save
    assert _ingest_routes(client, source) == {kept.pk}

    route = Connection.objects.get(destination=kept)
    route.filter_rules = [{"field": "payload.n", "op": "eq", "value": 2}]
    route.save()
    assert _ingest_routes(client, source) == set()


def test_it_sees_a_paused_source_and_a_deleted_one_at_once(alice, client):
    require_redis()
    source = make_source(alice.org)
    for _ in range(2):
        assert ingest(client, source, {"n": 1}).status_code == 200
    source.status = "paused"
    source.save()
    assert ingest(client, source, {"n": 1}).status_code == 503
    source_id = source.pk
    source.delete()
    assert ingest(client, source_id, {"n": 1}).status_code == 404


def test_it_reads_again_when_another_process_bumps_the_version_or_redis_loses_it(alice, client):
    require_redis()
    source = make_source(alice.org)
    for _ in range(2):
        ingest(client, source, {"n": 0})
    assert _selects(client, source) == 0
    scope = versions.routes_scope(alice.org.pk)
    # Another process's change: a new token in Redis.
    redis.Redis.from_url(settings.REDIS_URL).set(versions.KEY_PREFIX + scope, "from-another-process")
    assert _selects(client, source) > 0  # read again (one SELECT on PostgreSQL, two elsewhere)
    assert _selects(client, source) == 0
    # Redis flushed or restarted empty: a fresh token, unlike the one held.
    redis.Redis.from_url(settings.REDIS_URL).delete(versions.KEY_PREFIX + scope)
    assert _selects(client, source) > 0  # read again (one SELECT on PostgreSQL, two elsewhere)
    assert _selects(client, source) == 0


def test_it_reads_again_a_copy_older_than_the_maximum_age(alice, client, monkeypatch):
    require_redis()
    source = make_source(alice.org)
    for _ in range(2):
        ingest(client, source, {"n": 0})
    assert _selects(client, source) == 0
    monkeypatch.setattr(versions, "MAX_AGE_SECONDS", 0.0)
    assert _selects(client, source) > 0  # read again (one SELECT on PostgreSQL, two elsewhere)


def test_it_keeps_nothing_without_a_shared_cache(alice, client, settings):
    source = make_source(alice.org)
    settings.REDIS_URL = ""
    for _ in range(3):
        assert _selects(client, source) >= 1
    assert versions.current(versions.routes_scope(alice.org.pk)) is None


def test_it_bumps_once_now_and_once_more_when_the_transaction_commits(alice, django_capture_on_commit_callbacks):
    require_redis()
    scope = versions.routes_scope(alice.org.pk)
    before = versions.current(scope)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_source(alice.org)
        during = versions.current(scope)
    assert during != before
    assert callbacks  # the second bump waits for the commit
    for callback in callbacks:
        callback()
    assert versions.current(scope) not in (before, during)


def test_it_forgets_sources_beyond_its_bound(alice, client, monkeypatch):
    require_redis()
    monkeypatch.setattr(selectors, "HELD_MAX", 1)
    first, second = make_source(alice.org), make_source(alice.org)
    for source in (first, second, first):
        assert ingest(client, source, {"n": 1}).status_code == 200
    assert len(selectors._held) == 1
