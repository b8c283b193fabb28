"""What keeps ingest fast without giving up a guarantee: the source's counters are not held
locked through the event's commit, and the rate limiter costs one Redis round trip."""

import threading
import time
import uuid

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.test import Client

from deliveries import dispatch
from deliveries.models import Delivery
from hookstream.api import ratelimit
from intake import services
from intake.models import Connection, Event, Source
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest
from tests.support import require_postgres, require_redis


def _events_seen_by_another_session(source_id: str) -> int:
    db = connections["default"].settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True
    ) as other:
        return other.execute("SELECT count(*) FROM intake_event WHERE source_id = %s", [source_id]).fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_it_commits_the_event_before_it_counts_it(alice, client, monkeypatch):
    require_postgres()
    source = make_source(alice.org)
    seen = []
    real_count = services.source_count_event

    def count_and_look(*, source, now):
        seen.append(_events_seen_by_another_session(source.pk))
        real_count(source=source, now=now)

    monkeypatch.setattr(services, "source_count_event", count_and_look)
    assert ingest(client, source, {"n": 1}).status_code == 200

    assert seen == [1]  # durable and visible to everyone before the counters move
    source.refresh_from_db()
    assert source.event_count == 1


@pytest.mark.django_db(transaction=True)
def test_it_counts_every_event_of_concurrent_ingests_to_one_source(alice):
    require_postgres()
    source = make_source(alice.org)
    codes: list[int] = []

    def sender(n: int) -> None:
        client = Client()
        try:
            for i in range(5):
                codes.append(ingest(client, source, {"sender": n, "i": i}).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert codes == [200] * 30
    source = Source.objects.get(pk=source.pk)
    newest = Event.objects.filter(source=source).order_by("-received_at").first()
    assert Event.objects.filter(source=source).count() == 30
    assert source.event_count == 30
    assert source.last_event_at == newest.received_at


def test_it_keeps_a_rate_limit_window_in_one_expiring_redis_key():
    require_redis()

    bucket = f"test:{uuid.uuid4().hex}"
    first = ratelimit.hit(bucket, 2)
    second = ratelimit.hit(bucket, 2)
    third = ratelimit.hit(bucket, 2)

    assert [first[:2], second[:2], third[:2]] == [(True, 1), (True, 0), (False, 0)]
    window = int(time.time() // ratelimit.WINDOW_SECONDS)
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = f"rl:{bucket}:{window}"
    if not client.exists(key):  # the window turned between the calls and here
        key = f"rl:{bucket}:{window - 1}"
    assert int(client.get(key)) == 3
    assert 0 < client.ttl(key) <= ratelimit.WINDOW_SECONDS + 5


@pytest.mark.django_db(transaction=True)
def test_it_commits_the_event_and_its_deliveries_synchronously(alice, client, monkeypatch):
    """Only the counters' statement waives the flush: the event's own statement runs with
    ``synchronous_commit`` on, and nothing leaks it into the session."""
    require_postgres()
    source = make_source(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=make_destination(alice.org))
    monkeypatch.setattr(dispatch, "delivery_wake", lambda delivery_id: None)
    settings_at_insert = []
    real_execute = CursorWrapper.execute

    def execute(self, sql, params=None):
        if sql.startswith("WITH new_event AS"):
            settings_at_insert.append(self.db.connection.execute("SHOW synchronous_commit").fetchone()[0])
        return real_execute(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", execute)
    for n in range(3):
        assert ingest(client, source, {"n": n}).status_code == 200
    assert settings_at_insert == ["on", "on", "on"]
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert Delivery.objects.count() == 3
