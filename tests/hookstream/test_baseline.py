"""The API baseline: error body, request ids, limits, rate limits."""

import time

import pytest
import redis
from django.test import override_settings

from tests.destinations.helpers import assert_error_body
from tests.support import require_redis


def test_it_answers_401_without_a_key(db, client):
    response = client.get("/v1/destinations")
    assert response.status_code == 401
    assert response["X-Request-Id"].startswith("req_")


def test_it_answers_404_with_the_error_body_for_unknown_paths(db, client):
    response = client.get("/v1/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404
    assert body["request_id"] == response["X-Request-Id"]


# --- error body, request id, rate limits (the API baseline) --------------------------------------


def test_it_puts_a_request_id_on_every_response(api):
    ok = api.get("/v1/destinations")
    missing = api.get("/v1/destinations/dst_" + "0" * 32)

    assert ok.status_code == 200 and ok["X-Request-Id"].startswith("req_")
    assert missing["X-Request-Id"].startswith("req_") and missing["X-Request-Id"] != ok["X-Request-Id"]


def test_it_answers_405_with_the_error_body(api):
    assert_error_body(api.put("/v1/destinations", {}, format="json"), 405)


def test_it_answers_an_unknown_api_path_with_the_error_body_even_unauthenticated(db, client):
    response = client.post("/v1/destinations/dst_x/nothing-here", {})

    assert_error_body(response, 404)


@pytest.mark.parametrize("limit", ["1", "100"])
def test_it_accepts_the_limits_at_both_ends(api, limit):
    assert api.get(f"/v1/destinations?limit={limit}").status_code == 200


@override_settings(HOOKSTREAM_RATE_LIMIT_PER_MINUTE=3)
def test_it_rate_limits_per_organization_with_ratelimit_headers(alice, bob):
    if time.time() % 60 > 58:
        time.sleep(2.5)  # the window is fixed: do not straddle its end
    client = alice.client()
    answers = [client.get("/v1/destinations") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    limited = answers[3]
    assert_error_body(limited, 429)
    assert limited["RateLimit-Limit"] == "3"
    assert 1 <= int(limited["RateLimit-Reset"]) <= 60
    assert int(limited["Retry-After"]) >= 1
    # Another organization has its own budget.
    assert bob.client().get("/v1/destinations").status_code == 200


def test_it_keeps_rate_limit_counters_in_redis_when_configured(settings, alice):
    require_redis()

    alice.client().get("/v1/destinations")

    keys = redis.Redis.from_url(settings.REDIS_URL).keys(f"*rl:org:{alice.org.pk}:*")
    assert keys, "the rate-limit counter is not in Redis"
