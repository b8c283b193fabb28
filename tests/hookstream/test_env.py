import os
import subprocess
import sys

import pytest
from django.conf import settings

from hookstream.env import ImproperlyConfiguredEnv, env_bool, env_choice, env_int, env_list


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env_bool("HS_TEST_VAR", False), "maybe"),
        (lambda: env_int("HS_TEST_VAR", 1), "ten"),
        (lambda: env_int("HS_TEST_VAR", 1, minimum=0), "-1"),
        (lambda: env_int("HS_TEST_VAR", 1, maximum=5), "6"),
        (lambda: env_choice("HS_TEST_VAR", "a", {"a", "b"}), "c"),
    ],
)
def test_it_refuses_a_malformed_value_naming_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("HS_TEST_VAR", raw)
    with pytest.raises(ImproperlyConfiguredEnv, match="HS_TEST_VAR"):
        reader()


def test_it_reads_well_formed_values(monkeypatch):
    monkeypatch.setenv("HS_TEST_VAR", "yes")
    assert env_bool("HS_TEST_VAR", False) is True
    monkeypatch.setenv("HS_TEST_VAR", "42")
    assert env_int("HS_TEST_VAR", 1, minimum=0, maximum=100) == 42
    monkeypatch.setenv("HS_TEST_VAR", "a, b,,c")
    assert env_list("HS_TEST_VAR", []) == ["a", "b", "c"]


def test_it_falls_back_to_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("HS_TEST_VAR", raising=False)
    assert env_int("HS_TEST_VAR", 7) == 7
    assert env_bool("HS_TEST_VAR", True) is True


@pytest.mark.parametrize(("redis_url", "expected"), [("", "0.0"), ("redis://127.0.0.1:6379/1", "10.0")])
def test_wake_up_de_duplication_is_on_only_with_a_cache_web_and_workers_share(redis_url, expected, tmp_path):
    """Without Redis each process has its own cache: a worker could not clear the web's mark,
    and new events would wait for beat (30 s) instead of being woken at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSTREAM_WAKE", "REDIS_URL"))}
    env.update(REDIS_URL=redis_url, DJANGO_SETTINGS_MODULE="hookstream.settings", HOOKSTREAM_VAR_DIR=str(tmp_path))
    code = "import django; django.setup(); "
    code += "from django.conf import settings as s; print(s.HOOKSTREAM_WAKE_DEDUP_SECONDS)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
