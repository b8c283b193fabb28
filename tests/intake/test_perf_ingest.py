"""What keeps ingest fast without giving up a guarantee: the source's counters are not held
locked through the event's commit, and the rate limiter costs one Redis round trip."""

import threading
import time
import uuid

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import IntegrityError, connections
from django.db.backends.utils import CursorWrapper
from django.test import Client

from deliveries import dispatch, fanout
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


def _other_session():
    db = connections["default"].settings_dict
    return psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"])


@pytest.mark.django_db(transaction=True)
def test_it_commits_the_event_before_it_counts_it(alice):
    """Another session holds the source's row: the ingest's event is committed and visible
    to everyone while its count waits for the row."""
    require_postgres()
    source = make_source(alice.org)
    answers = []
    with _other_session() as other:
        # What the counters need; the event's foreign key check (FOR KEY SHARE) does not wait for it.
        other.execute("SELECT 1 FROM intake_source WHERE id = %s FOR NO KEY UPDATE", [source.pk])
        sender = threading.Thread(
            target=lambda: (answers.append(ingest(Client(), source, {"n": 1})), connections.close_all())
        )
        sender.start()
        deadline = time.monotonic() + 10
        while _events_seen_by_another_session(source.pk) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _events_seen_by_another_session(source.pk) == 1  # durable before the counters move
        assert not answers  # the count is still waiting for the row
        other.rollback()
    sender.join(10)
    assert answers[0].status_code == 200
    source.refresh_from_db()
    assert source.event_count == 1


@pytest.mark.django_db(transaction=True)
def test_it_answers_200_when_only_the_count_fails(alice, client, monkeypatch, caplog):
    require_postgres()
    source = make_source(alice.org)
    monkeypatch.setattr(services, "source_count_event_sql", lambda *, source, now: ("SELECT 1/0", []))
    with caplog.at_level("WARNING", logger="intake.services"):
        assert ingest(client, source, {"n": 1}).status_code == 200
    assert Event.objects.filter(source=source).count() == 1
    assert any("could not count event" in r.getMessage() for r in caplog.records)
    source.refresh_from_db()
    assert source.event_count == 0


@pytest.mark.django_db(transaction=True)
def test_it_stores_nothing_when_the_event_fails_and_leaves_the_connection_usable(alice, client, monkeypatch):
    require_postgres()
    source = make_source(alice.org)
    Connection.objects.create(organization=alice.org, source=source, destination=make_destination(alice.org))
    real_rows = fanout._delivery_rows

    def rows_to_nowhere(**kwargs):
        return [{**row, "destination_id": "dst_gone"} for row in real_rows(**kwargs)]  # fails at COMMIT

    monkeypatch.setattr(fanout, "_delivery_rows", rows_to_nowhere)
    with pytest.raises(IntegrityError):
        ingest(client, source, {"n": 1})
    assert connections["default"].connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0
    source.refresh_from_db()
    assert source.event_count == 0


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
    monkeypatch.setattr(dispatch, "destination_wake", lambda destination_id, force=False: None)
    settings_at_insert = []
    real_execute = CursorWrapper.execute

    def execute(self, sql, params=None):
        if "WITH new_event AS" in sql:
            # The event's transaction ends at the first COMMIT; nothing before it changes the setting.
            assert "synchronous_commit" not in sql.split("COMMIT")[0]
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
