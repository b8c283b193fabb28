"""``/v1/ws``: the live stream, through a real uvicorn server and real WebSocket clients."""

import json
import socket
import time

import pytest
import websocket
from django.test import Client

from deliveries.engine import process_delivery
from deliveries.models import DeliveryAttempt
from destinations.models import Destination
from hookstream import stream_bus
from intake import services as intake_services
from stream.hub import hub
from tests.deliveries.receiver import Receiver
from tests.factories import make_delivery, make_destination, make_event


def _connect(url: str, **kwargs) -> websocket.WebSocket:
    ws = websocket.create_connection(url, timeout=5, **kwargs)
    welcome = json.loads(ws.recv())
    assert welcome["type"] == "welcome"
    return ws


def _subscribe(ws: websocket.WebSocket, channel: str) -> None:
    ws.send(json.dumps({"type": "subscribe", "channel": channel}))
    assert json.loads(ws.recv()) == {"type": "subscribed", "channel": channel}


def _frames(ws: websocket.WebSocket, count: int, timeout: float = 10.0) -> list[dict]:
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < count:
        ws.settimeout(max(0.01, deadline - time.monotonic()))
        frames.append(json.loads(ws.recv()))
    return frames


def _nothing_arrives(ws: websocket.WebSocket, seconds: float = 0.7) -> bool:
    ws.settimeout(seconds)
    try:
        ws.recv()
    except websocket.WebSocketTimeoutException:
        return True
    return False


def _ingest(tenant, source, body: dict) -> str:
    response = Client().post(f"/v1/ingest/{source.pk}", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()["event_id"]


@pytest.fixture(params=["redis", "database"])
def bus(request, settings):
    """Both bus backends: Redis pub/sub (production) and the database (embedded setup)."""
    if request.param == "database":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.skip("Redis is not configured (REDIS_URL)")
    return request.param


def test_it_welcomes_a_key_and_streams_its_events(bus, stream_server, alice):
    source = intake_services.source_create(organization=alice.org, data={"name": "Orders"})
    ws = websocket.create_connection(stream_server.url(alice.raw_key), timeout=5)

    assert json.loads(ws.recv()) == {"type": "welcome", "org_id": alice.org.pk}
    _subscribe(ws, f"events:{source.pk}")
    event_id = _ingest(alice, source, {"order": 1})

    [frame] = _frames(ws, 1)
    assert frame["type"] == "event" and frame["channel"] == f"events:{source.pk}"
    assert frame["data"]["id"] == event_id and frame["data"]["source_id"] == source.pk
    assert frame["data"]["method"] == "POST" and frame["data"]["received_at"]
    ws.close()


def test_a_client_never_receives_another_organizations_frames(stream_server, alice, bob):
    alice_source = intake_services.source_create(organization=alice.org, data={"name": "A"})
    bob_source = intake_services.source_create(organization=bob.org, data={"name": "B"})
    alice_ws, bob_ws = _connect(stream_server.url(alice.raw_key)), _connect(stream_server.url(bob.raw_key))
    _subscribe(alice_ws, "events")
    # Naming the other organization's source as a channel does not reach its frames either.
    _subscribe(alice_ws, f"events:{bob_source.pk}")
    _subscribe(bob_ws, "events")

    bob_event = _ingest(bob, bob_source, {"secret": "bob's"})
    alice_event = _ingest(alice, alice_source, {"n": 1})

    assert [f["data"]["id"] for f in _frames(bob_ws, 1)] == [bob_event]
    assert [f["data"]["id"] for f in _frames(alice_ws, 1)] == [alice_event]
    assert _nothing_arrives(alice_ws) and _nothing_arrives(bob_ws)


def test_it_refuses_a_bad_key_and_a_missing_one(stream_server, alice):
    alice.key.revoked_at = alice.key.created_at
    alice.key.save()

    for url in (stream_server.url("hs_live_" + "0" * 64), stream_server.url(alice.raw_key), stream_server.url()):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url, timeout=5)
        assert refused.value.status_code == 403


def test_the_session_cookie_works_from_this_site_only(stream_server, alice):
    browser = Client()
    browser.force_login(alice.user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"

    # The console (same host, another port) may use its session; another site may not.
    ws = _connect(stream_server.url(), header=[f"Cookie: {cookie}"], origin="http://127.0.0.1:8000")
    ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(
            stream_server.url(), timeout=5, header=[f"Cookie: {cookie}"], origin="https://evil.example"
        )


def test_it_answers_bad_messages_without_closing(stream_server, alice):
    ws = _connect(stream_server.url(alice.raw_key))

    ws.send("not json")
    assert json.loads(ws.recv())["type"] == "error"
    ws.send(json.dumps({"type": "subscribe", "channel": "events:../../x"}))
    assert json.loads(ws.recv())["type"] == "error"
    ws.send(json.dumps({"type": "ping"}))
    assert json.loads(ws.recv()) == {"type": "pong"}
    _subscribe(ws, "issues")
    ws.send(json.dumps({"type": "unsubscribe", "channel": "issues"}))
    assert json.loads(ws.recv()) == {"type": "unsubscribed", "channel": "issues"}


def test_a_reconnected_client_streams_again(stream_server, alice):
    source = intake_services.source_create(organization=alice.org, data={"name": "Orders"})
    ws = _connect(stream_server.url(alice.raw_key))
    _subscribe(ws, "events")
    first = _ingest(alice, source, {"n": 1})
    assert [f["data"]["id"] for f in _frames(ws, 1)] == [first]
    ws.close()

    again = _connect(stream_server.url(alice.raw_key))
    _subscribe(again, "events")
    second = _ingest(alice, source, {"n": 2})

    assert [f["data"]["id"] for f in _frames(again, 1)] == [second]


@pytest.mark.slow
def test_a_burst_of_1000_frames_reaches_20_subscribers_with_none_lost(bus, stream_server, alice):
    clients = [_connect(stream_server.url(alice.raw_key)) for _ in range(20)]
    for ws in clients:
        _subscribe(ws, "deliveries")

    for number in range(1000):
        stream_bus.publish(
            organization_id=alice.org.pk, channels=["deliveries"], frame={"type": "delivery", "data": {"n": number}}
        )

    for ws in clients:
        assert [f["data"]["n"] for f in _frames(ws, 1000, timeout=60)] == list(range(1000))


@pytest.mark.slow
def test_a_client_that_does_not_read_is_dropped_and_the_others_keep_streaming(stream_server, alice, settings):
    settings.HOOKSTREAM_STREAM_BUFFER_FRAMES = 10
    # A small receive buffer, so that the loopback connection fills up quickly.
    slow = _connect(stream_server.url(alice.raw_key), sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    _subscribe(slow, "deliveries")
    fast = _connect(stream_server.url(alice.raw_key))
    _subscribe(fast, "deliveries")
    padding = "x" * 5_000

    received = 0
    for number in range(600):
        stream_bus.publish(
            organization_id=alice.org.pk,
            channels=["deliveries"],
            frame={"type": "delivery", "data": {"n": number, "padding": padding}},
        )
        if number % 5 == 4:  # the fast client keeps up: never more than 5 frames behind
            received += len(_frames(fast, 5))

    assert received == 600
    deadline = time.monotonic() + 10
    while hub.connection_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.connection_count() == 1  # the slow client was dropped; the fast one stays


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_attempts_and_issues_reach_their_channels(stream_server, alice, bob, receiver):
    receiver.default = (503, {}, b"down")
    destination = make_destination(alice.org, url=receiver.url, circuit_breaker_enabled=False, retry_intervals=[1])
    delivery = make_delivery(make_event(alice.org), destination)
    alice_ws, bob_ws = _connect(stream_server.url(alice.raw_key)), _connect(stream_server.url(bob.raw_key))
    _subscribe(alice_ws, f"deliveries:{destination.pk}")
    _subscribe(alice_ws, "issues")
    _subscribe(bob_ws, "deliveries")
    _subscribe(bob_ws, "issues")

    process_delivery(delivery.pk)  # a real attempt against a real receiver (transactional test)

    frames = {frame["type"]: frame for frame in _frames(alice_ws, 2)}
    attempt = frames["delivery"]
    assert attempt["channel"] == f"deliveries:{destination.pk}"
    assert attempt["data"]["delivery_id"] == delivery.pk and attempt["data"]["response_status"] == 503
    assert attempt["data"]["status"] == "failed" and attempt["data"]["next_retry_at"]
    issue = frames["issue"]
    assert issue["channel"] == "issues" and issue["data"]["error_type"] == "http_5xx"
    assert issue["data"]["destination_id"] == destination.pk and issue["data"]["status"] == "open"
    assert _nothing_arrives(bob_ws)


def test_a_websocket_channel_destination_publishes_to_its_stream_channel(stream_server, alice, bob):
    created = alice.client().post(
        "/v1/destinations",
        {"name": "Live orders", "type": "websocket", "provider_config": {"channel_name": "live-orders"}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    destination_id = created.json()["id"]
    alice_ws, bob_ws = _connect(stream_server.url(alice.raw_key)), _connect(stream_server.url(bob.raw_key))
    _subscribe(alice_ws, "live-orders")
    _subscribe(bob_ws, "live-orders")  # the same name in another organization sees nothing
    destination = Destination.objects.get(pk=destination_id)
    delivery = make_delivery(make_event(alice.org, {"order": 7}), destination)

    process_delivery(delivery.pk)

    [frame] = _frames(alice_ws, 1)
    assert frame == {
        "type": "event.delivered",
        "channel": "live-orders",
        "data": {"event_id": delivery.event_id, "destination_id": destination_id, "payload": '{"order": 7}'},
    }
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert DeliveryAttempt.objects.get(delivery=delivery).request_url == "stream:live-orders"
    assert _nothing_arrives(bob_ws)


@pytest.mark.django_db
def test_a_channel_destination_with_no_subscriber_still_succeeds(alice):
    destination = make_destination(alice.org, type="websocket", url="", provider_config={"channel_name": "nobody"})
    delivery = make_delivery(make_event(alice.org), destination)

    process_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
