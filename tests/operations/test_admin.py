from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus, ReplayJob, TriggerType
from deliveries.services import replay_job_run
from destinations.models import CircuitState, Destination
from hookstream import crypto
from intake.models import Event
from tests.factories import make_delivery, make_destination, make_event, make_source

APPS = ["hookstream", "destinations", "intake", "deliveries"]


@pytest.fixture
def su(db, client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "root-password-123")
    client.force_login(user)
    return client


def _url(model, view="changelist", *args):
    # Admin URLs escape primary keys ("_2…" would otherwise be read as an escape).
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=[quote(a) for a in args])


def _action(client, model, action, pks):
    return client.post(_url(model), {"action": action, "_selected_action": pks}, follow=True)


def test_every_model_registered():
    for app in APPS:
        for model in apps.get_app_config(app).get_models():
            assert admin.site.is_registered(model), model


@pytest.fixture
def world(alice):
    dest = make_destination(alice.org, headers={"Authorization": "Bearer topsecretvalue"})
    make_source(alice.org, verification_secret="whsec_sourcesecret")
    event = make_event(alice.org)
    delivery = make_delivery(event, dest, status=DeliveryStatus.DEAD)
    DeliveryAttempt.objects.create(
        organization=alice.org, delivery=delivery, event=event, destination=dest, attempt_number=1, status="failed"
    )
    DeadLetter.objects.create(
        organization=alice.org, delivery=delivery, destination=dest, event=event, reason="retries_exhausted"
    )
    return dest


def test_changelists_and_change_pages_load(su, world):
    models = [model for app in APPS for model in apps.get_app_config(app).get_models()]
    for model in models:
        row = getattr(model, "all_objects", model._default_manager).first()
        if row is not None:
            assert su.get(_url(model, "change", row.pk)).status_code == 200, model
    for model in models:
        response = su.get(_url(model))
        assert response.status_code == 200, model
        assert b"topsecretvalue" not in response.content


def test_secrets_masked(su, alice, world):
    world.provider_config = {"secret_key": crypto.encrypt("very-secret-value-1234")}
    Destination.objects.filter(pk=world.pk).update(
        provider_config={"x": 1}, signing_config={"secret": "whsec_abcdefgh"}
    )
    page = su.get(_url(Destination, "change", world.pk)).content
    assert b"topsecretvalue" not in page and b"whsec_abcdefgh" not in page and b"****" in page
    source = alice.org.sources.first()
    assert b"whsec_sourcesecret" not in su.get(_url(source, "change", source.pk)).content
    key = alice.key
    assert key.key_hash.encode() not in su.get(_url(key, "change", key.pk)).content


def test_attempts_read_only(su, world):
    attempt = DeliveryAttempt.objects.first()
    page = su.get(_url(DeliveryAttempt, "change", attempt.pk)).content
    assert b'name="_save"' not in page
    assert su.get(_url(DeliveryAttempt, "add")).status_code == 403


def test_reset_circuit_action(su, world):
    CircuitState.objects.filter(destination=world).update(state="open", failure_count=7)
    held = make_delivery(make_event(world.organization), world, status=DeliveryStatus.HELD)
    _action(su, Destination, "reset_circuit", [world.pk])
    assert CircuitState.objects.get(destination=world).state == "closed"
    assert Delivery.objects.get(pk=held.pk).status == DeliveryStatus.PENDING
    CircuitState.objects.filter(destination=world).update(state="open")
    _action(su, CircuitState, "reset_circuit", [world.pk])
    assert CircuitState.objects.get(destination=world).state == "closed"


def test_pause_resume_actions(su, world):
    _action(su, Destination, "pause", [world.pk])
    assert Destination.objects.get(pk=world.pk).status == "paused"
    held = make_delivery(make_event(world.organization), world, status=DeliveryStatus.HELD)
    _action(su, Destination, "resume", [world.pk])
    assert Destination.objects.get(pk=world.pk).status == "active"
    assert Delivery.objects.get(pk=held.pk).status == DeliveryStatus.PENDING


def test_retry_dead_letters_action(su, world):
    dead_letter = DeadLetter.objects.get()
    response = _action(su, DeadLetter, "retry", [dead_letter.pk])
    assert b"Retried 1" in response.content
    assert Delivery.objects.get(pk=dead_letter.delivery_id).status == DeliveryStatus.PENDING
    assert not DeadLetter.objects.exists()


def test_replay_events_action(su, world):
    event = Event.objects.get()
    other = make_event(world.organization)  # never delivered: nothing to replay
    response = _action(su, Event, "replay", [event.pk, other.pk])
    assert b"Queued 1 replay" in response.content
    replayed = Delivery.objects.get(event=event, trigger_type=TriggerType.REPLAY)
    assert replayed.destination == world and replayed.status == DeliveryStatus.PENDING


def test_replay_time_range_action_asks_for_the_range_then_starts_a_job(su, world):
    event = Event.objects.get()
    # First step: the intermediate page with the form, nothing started yet.
    page = _action(su, Destination, "replay_range", [world.pk])
    assert b"Replay events of a time range" in page.content and b"Start replay" in page.content
    assert not ReplayJob.objects.exists()

    # A range that ends before it starts is refused on the same page.
    now = timezone.now()
    fmt = "%Y-%m-%d %H:%M:%S"
    step = {"action": "replay_range", "_selected_action": [world.pk], "apply": "1"}
    bad = {"range_from": now.strftime(fmt), "range_to": (now - timedelta(hours=1)).strftime(fmt)}
    response = su.post(_url(Destination), {**step, "rate_limit": 10, "max_events": 5, **bad})
    assert "“From” must be before “To”.".encode() in response.content
    assert not ReplayJob.objects.exists()

    good = {
        "range_from": (now - timedelta(hours=1)).strftime(fmt),
        "range_to": (now + timedelta(minutes=1)).strftime(fmt),
        "rate_limit": 100,
        "max_events": 5,
    }
    response = su.post(_url(Destination), {**step, **good}, follow=True)
    job = ReplayJob.objects.get()
    assert b"Started replay" in response.content and job.pk.encode() in response.content
    assert job.destination == world and job.total == 1
    replay_job_run(job_id=job.pk)  # what the worker runs
    replayed = Delivery.objects.get(event=event, trigger_type=TriggerType.REPLAY)
    assert replayed.replay_job == job and replayed.destination == world


def test_delete_selected_destinations_asks_then_soft_deletes_as_the_api_does(su, world):
    waiting = make_delivery(make_event(world.organization), world, status=DeliveryStatus.PENDING)
    page = _action(su, Destination, "delete_selected", [world.pk])
    assert b"Delete these destinations?" in page.content and b"history" in page.content
    assert Destination.objects.filter(pk=world.pk).exists()  # only asked so far

    response = su.post(
        _url(Destination), {"action": "delete_selected", "_selected_action": [world.pk], "post": "yes"}, follow=True
    )
    assert b"Deleted 1 destination(s)" in response.content
    row = Destination.all_objects.get(pk=world.pk)
    assert row.deleted_at is not None and row.status == "disabled"
    assert not Destination.objects.filter(pk=world.pk).exists()
    # The history stays; what it still owed is cancelled.
    assert DeliveryAttempt.objects.filter(destination=world).exists()
    assert DeadLetter.objects.filter(destination=world).exists()
    assert Delivery.objects.get(pk=waiting.pk).status == DeliveryStatus.CANCELLED


def test_the_change_page_delete_is_the_same_soft_delete(su, world):
    confirm = su.get(_url(Destination, "delete", world.pk))
    html = confirm.content.decode()
    # Only the destination is listed: nothing cascades.
    assert confirm.status_code == 200 and "<li>Destinations: 1</li>" in html
    assert "Deliveries:" not in html and "Dead letters:" not in html and "Delivery attempts:" not in html
    su.post(_url(Destination, "delete", world.pk), {"post": "yes"}, follow=True)
    assert Destination.all_objects.get(pk=world.pk).deleted_at is not None
    assert DeliveryAttempt.objects.filter(destination=world).exists()
