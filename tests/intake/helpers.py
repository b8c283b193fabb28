"""Helpers shared by the intake tests."""

import hashlib
import hmac
import json


def ingest(client, source, body=b"", *, method="post", content_type="application/json", **extra):
    """Send ``body`` (bytes, or a JSON-able value) to a source's ingest URL as a third party would."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    send = getattr(client, method.lower())
    source_id = source if isinstance(source, str) else source.pk
    return send(f"/v1/ingest/{source_id}", data=body, content_type=content_type, **extra)


def hmac_hex(secret: str, body: bytes, digest=hashlib.sha256) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def post_json(client, path, body, **extra):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, data=text, content_type="application/json", **extra)


def patch_json(client, path, body):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.patch(path, data=text, content_type="application/json")


def assert_error(response, status: int, *fields: str) -> dict:
    """The spec §2 error body, with ``details`` naming ``fields`` when given."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response["X-Request-Id"]
    for field in fields:
        assert field in body.get("details", {}), f"{field} not in {body.get('details')}"
    return body
