from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus
from deliveries.retention import purge_old_events
from destinations.models import CircuitState, CircuitStateValue
from hookstream.celery import app as celery_app
from hookstream.models import APIKey, hash_key
from intake.models import Event
from tests.factories import make_delivery, make_destination, make_event


def run(*args, **kwargs):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


def test_create_api_key_prints_key_once(alice):
    out, _ = run("create_api_key", "--org", "alice", "--name", "ops")
    raw = out.strip().splitlines()[-1]
    key = APIKey.objects.get(name="ops")
    assert key.organization == alice.org and key.key_hash == hash_key(raw)


def test_create_api_key_creates_the_organization_when_asked(db):
    out, _ = run("create_api_key", "--org", "charlie", "--create-org")
    raw = out.strip().splitlines()[-1]
    key = APIKey.objects.get(key_hash=hash_key(raw))
    assert raw.startswith("hs_live_") and len(raw) == 8 + 64
    assert key.organization.slug == "charlie"


def test_create_api_key_unknown_org(db):
    with pytest.raises(CommandError, match="No organization"):
        run("create_api_key", "--org", "nope", "--name", "x")


def test_reset_circuit(alice):
    dest = make_destination(alice.org)
    CircuitState.objects.filter(destination=dest).update(state=CircuitStateValue.OPEN, failure_count=9)
    event = make_event(alice.org)
    held = make_delivery(event, dest, status=DeliveryStatus.HELD)
    out, _ = run("reset_circuit", dest.slug, "--org", "alice")
    assert "closed" in out
    assert CircuitState.objects.get(destination=dest).state == CircuitStateValue.CLOSED
    held.refresh_from_db()
    assert held.status == DeliveryStatus.PENDING


def test_reset_circuit_unknown(db):
    with pytest.raises(CommandError, match="No destination"):
        run("reset_circuit", "dst_missing")


def _dead(org, dest, created_at=None):
    event = make_event(org)
    delivery = make_delivery(event, dest, status=DeliveryStatus.DEAD)
    return DeadLetter.objects.create(
        organization=org,
        delivery=delivery,
        destination=dest,
        event=event,
        reason="max_attempts",
        created_at=created_at or timezone.now(),
    )


def test_retry_dead_letters_range(alice):
    dest = make_destination(alice.org)
    old = _dead(alice.org, dest, timezone.now() - timedelta(days=3))
    new = _dead(alice.org, dest)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    out, err = run("retry_dead_letters", "--destination", dest.pk, "--since", since)
    assert "Retried 1" in out and "1/1" in err
    assert Delivery.objects.get(pk=new.delivery_id).status == DeliveryStatus.PENDING
    assert Delivery.objects.get(pk=old.delivery_id).status == DeliveryStatus.DEAD
    assert DeadLetter.objects.filter(pk=old.pk).exists() and not DeadLetter.objects.filter(pk=new.pk).exists()


def test_retry_dead_letters_bad_date(alice):
    dest = make_destination(alice.org)
    with pytest.raises(CommandError, match="ISO 8601"):
        run("retry_dead_letters", "--destination", dest.pk, "--since", "yesterday")


def test_send_test_event(alice):
    dest = make_destination(alice.org)
    out, _ = run("send_test_event", dest.pk)
    delivery = Delivery.objects.get(destination=dest)
    assert delivery.pk in out and delivery.event.payload["type"] == "hookstream.test"


def test_send_test_event_unknown(db):
    with pytest.raises(CommandError):
        run("send_test_event", "nope")


def _aged_delivery(org, dest, days):
    event = make_event(org, received_at=timezone.now() - timedelta(days=days))
    delivery = make_delivery(event, dest, status=DeliveryStatus.SUCCEEDED)
    DeliveryAttempt.objects.create(
        organization=org, delivery=delivery, event=event, destination=dest, attempt_number=1, status="succeeded"
    )
    return event


def test_purge_events(alice):
    dest = make_destination(alice.org)
    old = [_aged_delivery(alice.org, dest, 40) for _ in range(3)]
    recent = _aged_delivery(alice.org, dest, 2)
    out, err = run("purge_events", "--older-than", "30d", "--batch-size", "2")
    assert "Deleted 3 event(s), 3 deliveries and 3 attempt(s)" in out
    assert "3/3" in err
    assert not Event.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert Event.objects.filter(pk=recent.pk).exists()
    assert Delivery.objects.count() == 1 and DeliveryAttempt.objects.count() == 1
    run("purge_events", "--older-than", "24h")
    assert not Event.objects.filter(pk=recent.pk).exists()


@pytest.mark.parametrize("value", ["30", "0d", "3w", "abc"])
def test_purge_events_bad_age(db, value):
    with pytest.raises(CommandError, match="older-than"):
        run("purge_events", "--older-than", value)


def test_purge_task_follows_setting(alice):
    dest = make_destination(alice.org)
    event = _aged_delivery(alice.org, dest, 10)
    with override_settings(HOOKSTREAM_RETENTION_DAYS=0):
        assert purge_old_events() is None
    assert Event.objects.filter(pk=event.pk).exists()
    with override_settings(HOOKSTREAM_RETENTION_DAYS=7):
        assert purge_old_events()["events"] == 1
    assert not Event.objects.filter(pk=event.pk).exists()


def test_delivery_status_table(alice, bob):
    dest = make_destination(alice.org, slug="orders")
    CircuitState.objects.filter(destination=dest).update(state=CircuitStateValue.OPEN)
    for status in ["pending", "pending", "held", "dead", "scheduled"]:
        make_delivery(make_event(alice.org), dest, status=status)
    make_destination(bob.org, slug="other")
    out, _ = run("delivery_status", "--org", "alice")
    line = next(line for line in out.splitlines() if "orders" in line)
    assert line.split()[3:] == ["2", "1", "1", "1", "open"]
    assert "other" not in out


def test_delivery_status_bad_org(db):
    with pytest.raises(CommandError):
        run("delivery_status", "--org", "nope")


def test_help_exists():
    for app, name in [
        ("hookstream", "create_api_key"),
        ("destinations", "reset_circuit"),
        ("deliveries", "retry_dead_letters"),
        ("deliveries", "send_test_event"),
        ("deliveries", "purge_events"),
        ("deliveries", "delivery_status"),
    ]:
        assert load_command_class(app, name).help


def test_purge_is_on_the_beat_schedule():
    entries = [e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()]
    assert "deliveries.purge_old_events" in entries
    celery_app.loader.import_default_modules()
    assert "deliveries.purge_old_events" in celery_app.tasks


def test_purge_keeps_events_still_owed_to_a_destination(alice):
    dest = make_destination(alice.org)
    done = _aged_delivery(alice.org, dest, 40)
    owed = {status: _aged_delivery(alice.org, dest, 40) for status in ["pending", "in_flight", "scheduled", "held"]}
    for status, event in owed.items():
        Delivery.objects.filter(event=event).update(status=status)
    out, _ = run("purge_events", "--older-than", "30d")
    assert "Deleted 1 event(s)" in out and "Kept 4 older event(s)" in out
    assert not Event.objects.filter(pk=done.pk).exists()
    assert Event.objects.filter(pk__in=[e.pk for e in owed.values()]).count() == 4


def test_retry_dead_letters_dry_run_says_what_it_would_do_and_changes_nothing(alice):
    dest = make_destination(alice.org)
    _dead(alice.org, dest)
    second = _dead(alice.org, dest)
    DeadLetter.objects.filter(pk=second.pk).update(reason="circuit_open")
    CircuitState.objects.filter(destination=dest).update(state=CircuitStateValue.OPEN)
    out, _ = run("retry_dead_letters", "--destination", dest.pk, "--dry-run", "--reset-circuit")
    assert "Would retry 2 dead letter(s)" in out and "1 circuit_open, 1 max_attempts" in out
    assert "circuit open, would be reset first" in out and "Nothing changed" in out
    assert DeadLetter.objects.count() == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DEAD}
    assert CircuitState.objects.get(destination=dest).state == CircuitStateValue.OPEN


def test_retry_dead_letters_warns_about_an_open_circuit(alice):
    dest = make_destination(alice.org)
    dead = _dead(alice.org, dest)
    CircuitState.objects.filter(destination=dest).update(state=CircuitStateValue.OPEN)
    out, err = run("retry_dead_letters", "--destination", dest.pk)
    assert "Retried 1" in out and "is open" in err and "--reset-circuit" in err
    assert Delivery.objects.get(pk=dead.delivery_id).status == DeliveryStatus.PENDING


def test_retry_dead_letters_can_reset_the_circuit_first(alice):
    dest = make_destination(alice.org)
    dead = _dead(alice.org, dest)
    CircuitState.objects.filter(destination=dest).update(state=CircuitStateValue.OPEN, failure_count=5)
    out, err = run("retry_dead_letters", "--destination", dest.pk, "--reset-circuit")
    assert "Retried 1" in out and "reset (was open)" in err
    assert CircuitState.objects.get(destination=dest).state == CircuitStateValue.CLOSED
    assert Delivery.objects.get(pk=dead.delivery_id).status == DeliveryStatus.PENDING
