"""Assertions shared by the destination tests."""

import json
import re

ID_RE = re.compile(r"^dst_[0-9a-f]{32}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
# Values of an example that differ on every run: checked by shape, not by value.
VOLATILE = {"id": ID_RE, "destination_id": ID_RE, "created_at": TIMESTAMP_RE, "updated_at": TIMESTAMP_RE}


def assert_matches_example(actual, example, path="$"):
    """Every key of ``example`` is in ``actual`` with the same value (ids and timestamps by
    shape); ``actual`` may carry more keys than the example shows."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in example.items():
            assert key in actual, f"{path}.{key} is missing from {sorted(actual)}"
            if key in VOLATILE and isinstance(value, str) and VOLATILE[key].match(value):
                assert VOLATILE[key].match(actual[key] or ""), f"{path}.{key}={actual[key]!r} has the wrong shape"
            else:
                assert_matches_example(actual[key], value, f"{path}.{key}")
    elif isinstance(example, list) and example and isinstance(example[0], dict):
        assert isinstance(actual, list) and len(actual) >= len(example), f"{path}: {actual!r}"
        for index, item in enumerate(example):
            assert_matches_example(actual[index], item, f"{path}[{index}]")
    else:
        assert actual == example, f"{path}: {actual!r} != {example!r}"


def assert_error_body(response, status: int, *fields: str):
    """The spec §2 error body, with ``details`` naming ``fields`` when given."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response["X-Request-Id"]
    assert body["request_id"].startswith("req_")
    for field in fields:
        assert field in body.get("details", {}), f"{field} not in {body.get('details')}"
    return body


def post_json(client, path, body):
    """POST a JSON text exactly as curl -d would send it."""
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, data=text, content_type="application/json")


def patch_json(client, path, body):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.patch(path, data=text, content_type="application/json")
