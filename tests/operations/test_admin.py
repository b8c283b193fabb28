import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.urls import reverse

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus, TriggerType
from destinations.models import CircuitState, Destination
from hookstream import crypto
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
    from intake.models import Event

    event = Event.objects.get()
    other = make_event(world.organization)  # never delivered: nothing to replay
    response = _action(su, Event, "replay", [event.pk, other.pk])
    assert b"Queued 1 replay" in response.content
    replayed = Delivery.objects.get(event=event, trigger_type=TriggerType.REPLAY)
    assert replayed.destination == world and replayed.status == DeliveryStatus.PENDING
