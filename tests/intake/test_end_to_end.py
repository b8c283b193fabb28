"""From ingest to a real HTTP receiver: the Delivery rows intake makes are what the engine
sends (the transformed payload when the route has a transform, else the body as received)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deliveries import dispatch
from deliveries.engine import process_delivery
from deliveries.models import Delivery, DeliveryStatus
from intake.models import Connection
from tests.factories import make_destination, make_source
from tests.intake.helpers import ingest


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            received.append((self.path, self.headers.get("Content-Type"), self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_it_delivers_what_was_ingested_raw_and_transformed(alice, client, receiver, settings, monkeypatch):
    settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = True
    monkeypatch.setattr(dispatch, "destination_wake", lambda destination_id, force=False: None)
    base, received = receiver
    source = make_source(alice.org)
    raw_destination = make_destination(alice.org, url=f"{base}/raw")
    shaped_destination = make_destination(alice.org, url=f"{base}/shaped")
    Connection.objects.create(organization=alice.org, source=source, destination=raw_destination)
    Connection.objects.create(
        organization=alice.org,
        source=source,
        destination=shaped_destination,
        transform_expression='{"kind": type, "total": amount}',
    )
    body = b'{"type": "order.created",  "amount": 12.5}'
    assert ingest(client, source, body).status_code == 200

    for delivery in Delivery.objects.all():
        process_delivery(delivery.pk)

    by_path = {path: (content_type, sent) for path, content_type, sent in received}
    assert by_path["/raw"][1] == body  # byte-exact
    assert json.loads(by_path["/shaped"][1]) == {"kind": "order.created", "total": 12.5}
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
    # The Events API shows it delivered, with an attempt per destination.
    api = alice.client()
    assert api.get("/v1/events").json()["events"][0]["status"] == "delivered"
    event_id = Delivery.objects.first().event_id
    assert len(api.get(f"/v1/events/{event_id}").json()["delivery_attempts"]) == 2
