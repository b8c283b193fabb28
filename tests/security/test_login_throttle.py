"""Issue 12, finding 12: failed log-ins are throttled per client address and per username,
on the console and on the Django admin, with a 429 and a lock-out that ends by itself."""

import time

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client

from hookstream import services as tenancy
from hookstream.redis_client import redis_client


def _forget_all_failures():
    if django_settings.REDIS_URL:
        redis = redis_client()
        for key in redis.scan_iter("login:*"):
            redis.delete(key)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _no_other_failures():
    """Counters live in Redis, shared by tests and runs: start from none, and leave no
    lock-out behind for the tests that log in after these."""
    _forget_all_failures()
    yield
    _forget_all_failures()


@pytest.fixture
def limits(settings):
    settings.HOOKSTREAM_LOGIN_FAILURES_PER_ADDRESS = 0
    settings.HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME = 0
    settings.HOOKSTREAM_LOGIN_LOCKOUT_SECONDS = 900
    return settings


def _login(client, username, password, address="198.51.100.7", path="/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def _assert_locked(response):
    assert response.status_code == 429, response.status_code
    assert b"Too many failed log-in attempts" in response.content
    assert 0 < int(response["Retry-After"]) <= 900


def test_it_locks_out_a_username_after_repeated_failures_whatever_the_address(alice, limits):
    limits.HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME = 3
    client = Client()
    for n in range(3):
        response = _login(client, "alice", "wrong", address=f"198.51.100.{n + 1}")
        assert response.status_code == 200 and b"Please enter a correct username" in response.content
    # Now locked: from yet another address, and even with the right password.
    _assert_locked(_login(client, "alice", "alice-password-123", address="198.51.100.9"))
    _assert_locked(_login(client, "ALICE", "alice-password-123", address="198.51.100.9"))
    assert "_auth_user_id" not in client.session
    # Another user from the same addresses is not affected.
    tenancy.user_create(username="bob", password="bob-password-123")
    assert _login(client, "bob", "bob-password-123", address="198.51.100.1").status_code == 302


def test_it_locks_out_an_address_that_tries_many_usernames(alice, limits):
    limits.HOOKSTREAM_LOGIN_FAILURES_PER_ADDRESS = 4
    client = Client()
    for n in range(4):
        assert _login(client, f"guess{n}", "wrong", address="203.0.113.5").status_code == 200
    _assert_locked(_login(client, "alice", "alice-password-123", address="203.0.113.5"))
    # The same user from another address logs in.
    assert _login(client, "alice", "alice-password-123", address="203.0.113.6").status_code == 302


def test_the_django_admin_login_is_throttled_too(alice, limits):
    limits.HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME = 2
    alice.user.is_staff = True
    alice.user.is_superuser = True
    alice.user.save()
    client = Client()
    for _ in range(2):
        assert _login(client, "alice", "wrong", path="/admin/login/").status_code == 200
    response = _login(client, "alice", "alice-password-123", path="/admin/login/")
    _assert_locked(response)
    # The console shares the count: it is the same account.
    _assert_locked(_login(client, "alice", "alice-password-123"))


def test_the_lock_out_ends_by_itself_after_the_cool_off(alice, limits):
    limits.HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME = 2
    limits.HOOKSTREAM_LOGIN_LOCKOUT_SECONDS = 1
    client = Client()
    for _ in range(2):
        _login(client, "alice", "wrong")
    _assert_locked(_login(client, "alice", "alice-password-123"))
    time.sleep(2.2)
    assert _login(client, "alice", "alice-password-123").status_code == 302


def test_a_successful_login_forgets_the_usernames_earlier_failures(alice, limits):
    limits.HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME = 3
    client = Client()
    for _ in range(2):
        _login(client, "alice", "wrong")
    assert _login(client, "alice", "alice-password-123").status_code == 302
    client = Client()
    for _ in range(2):
        assert _login(client, "alice", "wrong").status_code == 200
    assert _login(client, "alice", "alice-password-123").status_code == 302


def test_the_default_limits_answer_429_within_the_forty_attempts_of_the_finding(alice):
    client = Client()
    statuses = [_login(client, "alice", f"guess-{n}", address="192.0.2.40").status_code for n in range(40)]
    assert statuses[0] == 200
    assert statuses[-1] == 429
    assert statuses.index(429) == django_settings.HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME
