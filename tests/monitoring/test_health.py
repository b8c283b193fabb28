"""/healthz and /readyz, including a process whose database or broker is unreachable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.support import require_postgres

ROOT = Path(__file__).resolve().parents[2]

# Runs a whole Django process with the environment given, and asks it for /readyz.
PROBE = """
import json, os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "hookstream.settings"
django.setup()
from django.test import Client
response = Client().get("/readyz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _probe(**env) -> dict:
    environment = {**os.environ, "HOOKSTREAM_TESTING": "true", "HOOKSTREAM_READY_TIMEOUT_SECONDS": "1", **env}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_it_answers_healthz_without_authentication_or_database(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert client.get("/healthz/").status_code == 200


def test_it_is_ready_when_database_and_broker_answer(client, db):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready" and body["checks"] == {"database": "ok", "broker": "ok"}


def test_it_answers_503_when_the_database_is_unreachable():
    require_postgres()
    port = _closed_port()

    answer = _probe(DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/hookstream", DB_CONNECT_TIMEOUT="2")

    assert answer["status"] == 503
    assert answer["body"]["checks"] == {"database": "failed", "broker": "ok"}
    assert "database unreachable" in answer["body"]["reason"] and str(port) in answer["body"]["reason"]
    assert answer["body"]["duration_ms"] < 5000


def test_it_answers_503_when_the_broker_is_unreachable(db):
    require_postgres()
    port = _closed_port()
    test_database = settings.DATABASES["default"]["NAME"]  # the test database exists; hs_… may not
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{test_database}"

    answer = _probe(DATABASE_URL=url, CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0")

    assert answer["status"] == 503
    assert answer["body"]["checks"] == {"database": "ok", "broker": "failed"}
    assert f"127.0.0.1:{port}" in answer["body"]["reason"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_it_refuses_other_methods(client, db, path):
    assert client.post(path).status_code == 405
