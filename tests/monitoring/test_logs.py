"""Logs: LOG_FORMAT=json gives one JSON object per line with the context it applies to; the
engine's domain lines; idle beat says nothing at INFO."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from monitoring.logs import ContextFilter, QuietFilter, TextFormatter, context_bind, context_reset
from tests.factories import make_delivery, make_destination, make_event
from tests.support import require_postgres

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "hookstream.settings"
django.setup()
from django.test import Client
from deliveries.engine import process_delivery
key, delivery_id = sys.argv[1:]
Client().get("/v1/issues/iss_missing", HTTP_X_API_KEY=key)
process_delivery(delivery_id)
"""


def _env(**extra) -> dict:
    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    return {**os.environ, "HOOKSTREAM_TESTING": "true", "DATABASE_URL": url, **extra}


@pytest.mark.django_db(transaction=True)
def test_it_writes_json_lines_with_the_request_and_delivery_context(alice):
    require_postgres()
    destination = make_destination(
        alice.org, name="Ledger", url="http://127.0.0.1:9/hook", circuit_breaker_enabled=False
    )
    delivery = make_delivery(make_event(alice.org), destination)

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, alice.raw_key, delivery.id],
        cwd=ROOT,
        env=_env(LOG_FORMAT="json", LOG_LEVEL="INFO"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]  # every line parses
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    not_found = next(line for line in lines if line["logger"] == "django.request")
    assert not_found["level"] == "WARNING" and not_found["request_id"].startswith("req_")
    assert not_found["organization_id"] == alice.org.id
    failed = next(line for line in lines if "failed, attempt 1" in line["message"])
    assert failed["level"] == "WARNING" and "Ledger" in failed["message"] and "connection error" in failed["message"]
    assert "retry 1 in 30 s" in failed["message"]
    assert failed["delivery_id"] == delivery.id and failed["destination_id"] == destination.id
    assert failed["organization_id"] == alice.org.id and "request_id" not in failed


def test_it_appends_the_context_to_text_lines():
    record = logging.LogRecord("hookstream.deliveries", logging.WARNING, __file__, 1, "it failed", (), None)
    token = context_bind(delivery_id="dlv_1", destination_id="dst_2")
    try:
        ContextFilter().filter(record)
    finally:
        context_reset(token)

    text = TextFormatter("%(levelname)s %(message)s").format(record)

    assert text == "WARNING it failed [destination_id=dst_2 delivery_id=dlv_1]"


@pytest.mark.parametrize(
    ("logger", "message", "kept"),
    [
        ("celery.beat", "Scheduler: Sending due task deliveries-beat (deliveries.beat_tick)", False),
        ("celery.app.trace", "Task deliveries.beat_tick[1f2e] succeeded in 0.01s: None", False),
        ("celery.worker.strategy", "Task monitoring.minute[1f2e] received", False),
        ("celery.app.trace", "Task deliveries.deliver[1f2e] succeeded in 0.01s: None", True),
        ("celery.beat", "beat: Starting...", True),
    ],
)
def test_it_quiets_the_frequent_wake_up_lines_at_info(logger, message, kept):
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, message, (), None)
    assert QuietFilter().filter(record) is kept


def test_beat_is_silent_when_idle(tmp_path):
    require_postgres()
    env = _env(LOG_FORMAT="json", LOG_LEVEL="INFO", HOOKSTREAM_BEAT_INTERVAL_SECONDS="0.5")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hookstream", "beat", "--schedule", str(tmp_path / "schedule")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.terminate()
        _, stderr = process.communicate(timeout=10)

    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert not [line for line in lines if "Sending due task" in line["message"]], lines
    assert len(lines) <= 3, lines  # start-up and shut-down only, not a line per tick
