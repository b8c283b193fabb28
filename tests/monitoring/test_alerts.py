"""Alert rules and notification channels: the API, evaluation, and real sends (a loopback
webhook receiver, a loopback SMTP server) through a real worker."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from deliveries.models import DeadLetter, DeliveryAttempt
from monitoring import alerts, notify, services
from monitoring.models import AlertRule, Notification, NotificationChannel
from tests.deliveries.receiver import wait_until
from tests.factories import make_delivery, make_destination, make_event, make_source
from tests.monitoring.smtp import SMTPServer


@pytest.fixture
def smtp():
    server = SMTPServer()
    yield server
    server.close()


def _smtp_settings(server: SMTPServer):
    return override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=server.port,
        EMAIL_USE_TLS=False,
        DEFAULT_FROM_EMAIL="alerts@hookstream.test",
    )


# --- channels API ---------------------------------------------------------------------------


def test_it_creates_a_webhook_channel_with_an_encrypted_masked_secret(api, alice):
    response = api.post(
        "/v1/notification-channels",
        {
            "name": "Ops hook",
            "channel_type": "webhook",
            "config": {"url": "http://127.0.0.1:9/h", "secret": "topsecret"},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("nc_") and body["config"] == {"url": "http://127.0.0.1:9/h", "secret": "****cret"}
    stored = NotificationChannel.objects.get(pk=body["id"])
    assert stored.config["secret"].startswith("enc:v1:")
    # Echoing the mask back keeps the secret.
    api.patch(f"/v1/notification-channels/{body['id']}", {"config": body["config"]}, format="json")
    stored.refresh_from_db()
    assert notify.crypto.decrypt(stored.config["secret"]) == "topsecret"


@pytest.mark.parametrize(
    ("channel_type", "config", "field"),
    [
        ("webhook", {"url": "ftp://x"}, "config.url"),
        ("webhook", {"url": "http://x.test", "colour": "red"}, "config"),
        ("email", {"to": []}, "config.to"),
        ("email", {"to": ["not-an-address"]}, "config.to"),
        ("sms", {}, "channel_type"),
    ],
)
def test_it_refuses_bad_channels(api, channel_type, config, field):
    response = api.post(
        "/v1/notification-channels", {"name": "x", "channel_type": channel_type, "config": config}, format="json"
    )
    assert response.status_code == 400 and field in response.json()["details"], response.json()


def test_it_refuses_private_webhook_urls_when_private_networks_are_off(api):
    with override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False):
        response = api.post(
            "/v1/notification-channels",
            {"name": "x", "channel_type": "webhook", "config": {"url": "http://169.254.169.254/latest"}},
            format="json",
        )
    assert response.status_code == 400 and "SSRF" in response.json()["details"]["config.url"][0]


def test_it_lists_updates_and_deletes_channels_per_organization(api, alice, bob):
    made = api.post(
        "/v1/notification-channels",
        {"name": "Mail", "channel_type": "email", "config": {"to": ["a@x.io"]}},
        format="json",
    ).json()

    listed = api.get("/v1/notification-channels").json()
    assert set(listed) == {"notification_channels", "cursor", "has_more"}
    assert [c["id"] for c in listed["notification_channels"]] == [made["id"]]
    assert bob.client().get(f"/v1/notification-channels/{made['id']}").status_code == 404
    patched = api.patch(f"/v1/notification-channels/{made['id']}", {"name": "Mail 2"}, format="json").json()
    assert patched["name"] == "Mail 2" and patched["config"] == {"to": ["a@x.io"]}
    assert api.delete(f"/v1/notification-channels/{made['id']}").json() == {"success": True}
    assert api.get(f"/v1/notification-channels/{made['id']}").status_code == 404


# --- rules API ------------------------------------------------------------------------------


def test_it_creates_alert_rules_of_every_type(api, alice):
    channel = NotificationChannel.objects.create(
        organization=alice.org, name="m", channel_type="email", config={"to": ["a@x.io"]}
    )
    destination = make_destination(alice.org)
    source = make_source(alice.org)
    cases = [
        ("failure_rate", {"threshold": 25}, {"threshold": 0.25, "window_minutes": 5, "min_attempts": 5}),
        (
            "failure_rate",
            {"threshold": 0.1, "window_minutes": 15},
            {"threshold": 0.1, "window_minutes": 15, "min_attempts": 5},
        ),
        ("latency", {"threshold_ms": 800}, {"threshold_ms": 800, "percentile_target": "p95", "window_minutes": 5}),
        ("volume_drop", {"threshold": 50}, {"threshold": 50.0, "window_minutes": 5}),
        ("dlq", {"threshold": 3}, {"threshold": 3, "window_minutes": 5}),
        ("issue_opened", {}, {}),
    ]
    for rule_type, config, stored in cases:
        response = api.post(
            "/v1/alert-rules",
            {
                "name": f"{rule_type} rule",
                "rule_type": rule_type,
                "rule_config": config,
                "destination_id": destination.id,
                "source_id": source.id,
                "channel_ids": [channel.id],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["id"].startswith("ar_") and body["rule_config"] == stored
        assert body["channel_ids"] == [channel.id] and body["cooldown_minutes"] == 60 and body["enabled"] is True
        assert body["destination_id"] == destination.id and body["source_id"] == source.id
        assert body["last_triggered_at"] is None


def test_it_refuses_bad_rules_and_other_tenants_ids(api, bob):
    foreign = NotificationChannel.objects.create(
        organization=bob.org, name="b", channel_type="email", config={"to": ["b@x.io"]}
    )
    for payload, field in [
        ({"rule_type": "failure_rate", "rule_config": {}}, "rule_config.threshold"),
        (
            {"rule_type": "latency", "rule_config": {"threshold_ms": 5, "percentile_target": "p42"}},
            "rule_config.percentile_target",
        ),
        ({"rule_type": "dlq", "rule_config": {"threshold": 1, "oops": 1}}, "rule_config"),
        ({"rule_type": "issue_opened", "channel_ids": [foreign.id]}, "channel_ids"),
        ({"rule_type": "issue_opened", "destination_id": make_destination(bob.org).id}, "destination_id"),
        ({"rule_type": "nope"}, "rule_type"),
    ]:
        response = api.post("/v1/alert-rules", {"name": "r", **payload}, format="json")
        assert response.status_code == 400 and field in response.json()["details"], (payload, response.json())


def test_it_updates_and_deletes_a_rule(api, alice):
    rule = api.post(
        "/v1/alert-rules", {"name": "r", "rule_type": "dlq", "rule_config": {"threshold": 2}}, format="json"
    ).json()

    body = api.patch(f"/v1/alert-rules/{rule['id']}", {"enabled": False, "cooldown_minutes": 5}, format="json").json()
    assert body["enabled"] is False and body["cooldown_minutes"] == 5 and body["rule_config"]["threshold"] == 2
    body = api.patch(f"/v1/alert-rules/{rule['id']}", {"rule_config": {"threshold": 9}}, format="json").json()
    assert body["rule_config"] == {"threshold": 9, "window_minutes": 5}
    assert api.delete(f"/v1/alert-rules/{rule['id']}").json() == {"success": True}
    assert [r["id"] for r in api.get("/v1/alert-rules").json()["alert_rules"]] == []


# --- evaluation -----------------------------------------------------------------------------


def _attempts(org, destination, statuses, ms=10):
    event = make_event(org)
    delivery = make_delivery(event, destination)
    for n, status in enumerate(statuses, start=1):
        DeliveryAttempt.objects.create(
            organization=org,
            delivery=delivery,
            event=event,
            destination=destination,
            attempt_number=n,
            status=status,
            duration_ms=ms,
            error="HTTP 500" if status == "failed" else "",
        )
    return delivery


@pytest.mark.django_db
def test_it_fires_each_rule_type_on_its_figure_once_per_cooldown(alice, django_capture_on_commit_callbacks):
    destination = make_destination(alice.org)
    channel = NotificationChannel.objects.create(
        organization=alice.org, name="m", channel_type="email", config={"to": ["a@x.io"]}
    )
    _attempts(alice.org, destination, ["failed"] * 4 + ["success"] * 6, ms=900)
    dead = _attempts(alice.org, destination, ["failed"])
    DeadLetter.objects.create(
        organization=alice.org,
        delivery=dead,
        destination=destination,
        event=dead.event,
        reason="retries_exhausted",
        last_error="HTTP 500",
    )
    rules = {
        "failure_rate": ({"threshold": 0.3}, 0.4545),
        "latency": ({"threshold_ms": 500, "percentile_target": "p50"}, 900),
        "dlq": ({"threshold": 1, "window_minutes": 5}, 1),
    }
    made = {}
    for rule_type, (config, _) in rules.items():
        made[rule_type] = AlertRule.objects.create(
            organization=alice.org,
            name=rule_type,
            rule_type=rule_type,
            rule_config={"window_minutes": 5, "min_attempts": 5, **config},
            destination=destination,
        )
        made[rule_type].channels.add(channel)
    quiet = AlertRule.objects.create(
        organization=alice.org,
        name="q",
        rule_type="failure_rate",
        rule_config={"threshold": 0.9, "window_minutes": 5, "min_attempts": 5},
    )
    quiet.channels.add(channel)

    with django_capture_on_commit_callbacks(execute=False):
        assert alerts.alert_rules_evaluate() == 3
        assert alerts.alert_rules_evaluate() == 0  # cooldown
    payloads = {n.rule.rule_type: n.payload for n in Notification.objects.select_related("rule")}
    assert set(payloads) == {"failure_rate", "latency", "dlq"}
    for rule_type, (_, value) in rules.items():
        payload = payloads[rule_type]
        assert payload["value"] == value and payload["alert_rule"]["name"] == rule_type
        assert payload["destination"] == {"id": destination.id, "name": destination.name}
        assert payload["last_error"] == "HTTP 500"
        assert payload["console_url"].endswith(f"/destinations/{destination.id}/")
    assert AlertRule.objects.get(pk=made["dlq"].pk).last_triggered_at is not None

    later = timezone.now() + timedelta(minutes=61)
    with django_capture_on_commit_callbacks(execute=False):
        assert alerts.alert_rules_evaluate(now=later) == 0  # the window has moved past the failures


@pytest.mark.django_db
def test_it_fires_volume_drop_against_the_previous_window(alice):
    source = make_source(alice.org)
    now = timezone.now()
    for _ in range(10):
        make_event(alice.org, source=source, received_at=now - timedelta(minutes=7))
    make_event(alice.org, source=source, received_at=now - timedelta(minutes=1))
    rule = AlertRule.objects.create(
        organization=alice.org,
        name="v",
        rule_type="volume_drop",
        rule_config={"threshold": 50, "window_minutes": 5},
        source=source,
    )

    finding = alerts.volume_drop(rule, now)

    assert finding.value == 90.0 and "10 → 1" in finding.message


# --- end to end: an issue opens, a signed webhook and an email go out ----------------------


def test_it_sends_a_signed_webhook_and_an_email_when_an_issue_opens(alice, receiver, smtp, worker):
    destination = make_destination(alice.org, name="Billing API")
    hook = NotificationChannel.objects.create(
        organization=alice.org,
        name="hook",
        channel_type="webhook",
        config={"url": receiver.url, "secret": notify.crypto.encrypt("whsec-ops")},
    )
    mail = NotificationChannel.objects.create(
        organization=alice.org, name="mail", channel_type="email", config={"to": ["ops@example.test"]}
    )
    rule = AlertRule.objects.create(organization=alice.org, name="New issues", rule_type="issue_opened")
    rule.channels.add(hook, mail)
    AlertRule.objects.filter(pk=rule.pk).update(created_at=timezone.now() - timedelta(seconds=5))

    issue, opened = services.issue_record(
        organization_id=alice.org.id, destination_id=destination.id, error_type="http_5xx", message="HTTP 503: down"
    )
    assert opened
    with _smtp_settings(smtp):
        assert alerts.alert_rules_evaluate() == 1
        request = receiver.wait_for(1)[0]
        messages = smtp.wait_for(1)

    payload = json.loads(request.body)
    expected = "sha256=" + hmac.new(b"whsec-ops", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-hookstream-Signature"] == expected
    assert payload["type"] == "alert.triggered" and payload["alert_rule"]["id"] == rule.id
    assert payload["destination"] == {"id": destination.id, "name": "Billing API"}
    assert payload["issue"]["id"] == issue.id and payload["last_error"] == "HTTP 503: down"
    assert payload["console_url"].endswith(f"/issues/{issue.id}/")
    mail_from, to, message = messages[0]
    assert mail_from == "alerts@hookstream.test" and to == ["ops@example.test"]
    assert "New issues" in message["Subject"]
    text = message.get_payload(decode=True).decode()
    assert "Billing API" in text and "HTTP 503: down" in text and f"/issues/{issue.id}/" in text
    wait_until(lambda: set(Notification.objects.values_list("status", flat=True)) == {"sent"}, message="both sent")


def test_it_retries_a_failing_webhook_then_sends_it(alice, receiver, worker):
    receiver.script.append((502, {}, b"bad gateway"))
    channel = NotificationChannel.objects.create(
        organization=alice.org, name="hook", channel_type="webhook", config={"url": receiver.url}
    )

    with override_settings():
        notify.NOTIFICATION_RETRY_SECONDS = (0.2, 0.2, 0.2, 0.2, 0.2)
        try:
            notification = alerts.channel_test(channel=channel)
            requests = receiver.wait_for(2)
        finally:
            notify.NOTIFICATION_RETRY_SECONDS = (10, 60, 300, 900, 3600)

    assert "X-hookstream-Signature" not in requests[1].headers  # no secret, no signature
    assert json.loads(requests[1].body)["type"] == "alert.test"
    wait_until(lambda: Notification.objects.get(pk=notification.pk).status == "sent", message="sent")
    assert Notification.objects.get(pk=notification.pk).attempt_count == 2


def test_it_sends_a_test_email_through_the_api(alice, smtp, worker):
    channel = NotificationChannel.objects.create(
        organization=alice.org, name="mail", channel_type="email", config={"to": ["me@example.test"]}
    )

    with _smtp_settings(smtp):
        response = alice.client().post(f"/v1/notification-channels/{channel.id}/test")
        assert response.status_code == 202 and response.json()["id"].startswith("ntf_")
        _, to, message = smtp.wait_for(1)[0]

    assert to == ["me@example.test"] and "Test: Test alert" in message["Subject"]


@pytest.mark.django_db
def test_it_refuses_to_send_a_webhook_to_a_private_address_when_private_networks_are_off(alice):
    channel = NotificationChannel.objects.create(
        organization=alice.org, name="hook", channel_type="webhook", config={"url": "http://10.1.2.3/hook"}
    )
    notification = Notification.objects.create(organization=alice.org, channel=channel, payload={"message": "x"})

    with override_settings(HOOKSTREAM_ALLOW_PRIVATE_NETWORKS=False), pytest.raises(notify.SendFailed, match="SSRF"):
        notify.notification_deliver(notification_id=notification.pk)
