"""Cursors: a forged one is a 400 with the error body, never a database error."""

import base64
from datetime import UTC, datetime

import pytest

from hookstream.api.pagination import decode_cursor, encode_cursor


def forged(pk: str) -> str:
    return base64.urlsafe_b64encode(f"2025-01-01T00:00:00+00:00|{pk}".encode()).decode().rstrip("=")


def test_it_decodes_what_it_encodes():
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, "evt_0123abcd")) == (at, "evt_0123abcd")


@pytest.mark.parametrize("pk", ["\x00", "evt_1' OR 1=1", "", "x" * 65])
def test_a_cursor_naming_no_id_is_a_400(api, pk):
    response = api.get("/v1/events", {"cursor": forged(pk)})
    assert response.status_code == 400
    assert response.json()["details"] == {"cursor": ["Invalid cursor."]}
