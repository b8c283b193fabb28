"""Topics: CRUD, subscriptions (409 on a duplicate), publish with and without an
idempotency key, and isolation."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connections

from deliveries.engine import process_delivery
from deliveries.models import Delivery
from intake.models import Event, Subscription, Topic
from tests.factories import make_destination
from tests.intake.helpers import assert_error, patch_json, post_json
from tests.support import require_postgres


@pytest.fixture
def topic(api):
    response = post_json(api, "/v1/topics", {"name": "Orders", "description": "order events"})
    assert response.status_code == 201, response.content
    return response.json()


def _publish(client, slug, body, **extra):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"/v1/topics/{slug}/publish", data=text, content_type="application/json", **extra)


def test_it_creates_a_topic_with_a_publish_url(api, topic):
    assert topic["slug"] == "orders"
    assert topic["publish_url"] == "http://testserver/v1/topics/orders/publish"  # the request's own host
    assert topic["subscriptions"] == []
    assert [t["id"] for t in api.get("/v1/topics").json()["topics"]] == [topic["id"]]
    renamed = patch_json(api, f"/v1/topics/{topic['id']}", {"description": "all orders"})
    assert renamed.status_code == 200 and renamed.json()["description"] == "all orders"
    assert_error(post_json(api, "/v1/topics", {"name": "Orders", "slug": "orders"}), 409)
    assert_error(post_json(api, "/v1/topics", {"name": "x", "slug": "No Slug"}), 400, "slug")
    assert api.delete(f"/v1/topics/{topic['id']}").json() == {"success": True}
    assert Topic.objects.count() == 0


def test_it_subscribes_destinations_and_answers_409_for_a_duplicate(alice, api, topic):
    destination = make_destination(alice.org)
    path = f"/v1/topics/{topic['id']}/subscriptions"
    body = {"destination_id": destination.pk, "filter_rules": [{"field": "payload.total", "op": "gt", "value": 10}]}
    response = post_json(api, path, body)
    assert response.status_code == 201, response.content
    subscription = response.json()
    assert subscription["topic_id"] == topic["id"] and subscription["destination_id"] == destination.pk
    assert_error(post_json(api, path, {"destination_id": destination.pk}), 409)
    assert_error(post_json(api, path, {"destination_id": destination.pk, "transform_expression": "{"}), 400)

    detail = api.get(f"/v1/topics/{topic['id']}").json()
    assert [s["id"] for s in detail["subscriptions"]] == [subscription["id"]]
    assert [s["id"] for s in api.get(path).json()["subscriptions"]] == [subscription["id"]]

    one = f"{path}/{subscription['id']}"
    assert patch_json(api, one, {"filter_rules": []}).json()["filter_rules"] == []
    assert api.delete(one).json() == {"success": True}
    assert Subscription.objects.count() == 0


def test_it_publishes_and_fans_out_to_matching_subscriptions(alice, api, topic):
    big, small = make_destination(alice.org), make_destination(alice.org)
    path = f"/v1/topics/{topic['id']}/subscriptions"
    post_json(
        api, path, {"destination_id": big.pk, "filter_rules": [{"field": "payload.total", "op": "gte", "value": 100}]}
    )
    post_json(api, path, {"destination_id": small.pk, "transform_expression": '{"t": total}'})

    response = _publish(api, "orders", {"total": 50})
    assert response.status_code == 202, response.content
    answer = response.json()
    assert set(answer) == {"event_id", "topic", "received_at"} and answer["topic"] == "orders"
    event = Event.objects.get(pk=answer["event_id"])
    assert event.topic_id == topic["id"] and event.source_id is None
    assert bytes(event.body) == b'{"total": 50}' and event.payload == {"total": 50}
    # The publisher's credentials are not stored with the event.
    assert not any(name.lower() in ("x-api-key", "authorization") for name in event.headers)
    # The worker applies the subscription's transform before the first attempt.
    for delivery in Delivery.objects.filter(event=event):
        process_delivery(delivery.pk)
    deliveries = list(Delivery.objects.filter(event=event))
    assert [(d.destination_id, d.transformed_payload) for d in deliveries] == [(small.pk, {"t": 50})]
    assert deliveries[0].subscription_id is not None and deliveries[0].connection_id is None


def test_it_publishes_without_an_idempotency_key_every_time(api, topic):
    first = _publish(api, "orders", {"n": 1}).json()["event_id"]
    second = _publish(api, "orders", {"n": 1}).json()["event_id"]
    assert first != second and Event.objects.count() == 2


def test_it_answers_a_repeated_idempotency_key_with_the_first_event(alice, api, topic):
    post_json(api, f"/v1/topics/{topic['id']}/subscriptions", {"destination_id": make_destination(alice.org).pk})
    first = _publish(api, "orders", {"n": 1}, HTTP_IDEMPOTENCY_KEY="order-1")
    again = _publish(api, "orders", {"n": 1, "retry": True}, HTTP_IDEMPOTENCY_KEY="order-1")
    other = _publish(api, "orders", {"n": 2}, HTTP_IDEMPOTENCY_KEY="order-2")
    assert first.status_code == 202 and again.status_code == 200 and other.status_code == 202
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["received_at"] == first.json()["received_at"]
    assert other.json()["event_id"] != first.json()["event_id"]
    assert Event.objects.count() == 2 and Delivery.objects.count() == 2

    # After 24 hours the key is free again.
    Event.objects.filter(pk=first.json()["event_id"]).update(
        received_at=Event.objects.get(pk=first.json()["event_id"]).received_at - timedelta(hours=25)
    )
    later = _publish(api, "orders", {"n": 1}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert later.status_code == 202 and later.json()["event_id"] != first.json()["event_id"]
    assert (
        _publish(api, "orders", {"n": 1}, HTTP_IDEMPOTENCY_KEY="order-1").json()["event_id"] == later.json()["event_id"]
    )


def test_it_scopes_idempotency_keys_to_the_topic(alice, api, topic):
    post_json(api, "/v1/topics", {"name": "Refunds"})
    a = _publish(api, "orders", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k").json()["event_id"]
    b = _publish(api, "refunds", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k").json()["event_id"]
    assert a != b


def test_it_refuses_bad_publishes(api, topic, client, settings):
    assert_error(_publish(api, "orders", "{not json"), 400)
    assert_error(_publish(api, "orders", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k" * 201), 400)
    assert_error(_publish(api, "no-such-topic", {"n": 1}), 404)
    assert client.post("/v1/topics/orders/publish", data="{}", content_type="application/json").status_code == 401
    settings.HOOKSTREAM_MAX_BODY_BYTES = 20
    assert_error(_publish(api, "orders", {"text": "x" * 50}), 413)
    assert Event.objects.count() == 0


def test_it_hides_another_organizations_topics(alice, bob, api, topic):
    destination = make_destination(alice.org)
    subscription = post_json(api, f"/v1/topics/{topic['id']}/subscriptions", {"destination_id": destination.pk}).json()
    other = bob.client()
    assert other.get("/v1/topics").json()["topics"] == []
    assert_error(other.get(f"/v1/topics/{topic['id']}"), 404)
    assert_error(patch_json(other, f"/v1/topics/{topic['id']}", {"name": "mine"}), 404)
    assert_error(other.delete(f"/v1/topics/{topic['id']}"), 404)
    assert_error(other.get(f"/v1/topics/{topic['id']}/subscriptions"), 404)
    assert_error(post_json(other, f"/v1/topics/{topic['id']}/subscriptions", {"destination_id": destination.pk}), 404)
    assert_error(other.delete(f"/v1/topics/{topic['id']}/subscriptions/{subscription['id']}"), 404)
    # Bob publishing to "orders" finds no topic of his.
    assert_error(_publish(other, "orders", {"n": 1}), 404)
    # Nor can alice subscribe bob's destination.
    assert_error(
        post_json(api, f"/v1/topics/{topic['id']}/subscriptions", {"destination_id": make_destination(bob.org).pk}),
        400,
        "destination_id",
    )
    assert Event.objects.count() == 0 and Subscription.objects.count() == 1


def test_it_refuses_what_the_database_cannot_store_with_a_400(alice, api, topic):
    assert_error(_publish(api, "orders", '{"a": "x\\u0000"}'), 400, "body")
    rules = [{"field": "payload.a", "op": "eq", "value": "x\u0000"}]
    body = {"destination_id": make_destination(alice.org).pk, "filter_rules": rules}
    assert_error(post_json(api, f"/v1/topics/{topic['id']}/subscriptions", body), 400, "filter_rules")
    assert Event.objects.count() == 0 and Subscription.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_stores_one_event_for_concurrent_publishes_with_one_idempotency_key(alice):
    require_postgres()
    Topic.objects.create(organization=alice.org, name="Orders", slug="orders")
    start = threading.Barrier(10)
    answers, errors = [], []

    def publish():
        try:
            client = alice.client()
            start.wait(timeout=10)
            response = _publish(client, "orders", {"n": 1}, HTTP_IDEMPOTENCY_KEY="same")
            answers.append((response.status_code, response.json().get("event_id")))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=publish) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(status for status, _ in answers) == [200] * 9 + [202]
    assert len({event_id for _, event_id in answers}) == 1
    assert Event.objects.count() == 1
