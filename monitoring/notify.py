"""Sending notifications: one ``Notification`` row per message and channel, sent by a worker.

* webhook: ``POST`` of the JSON payload through the outbound HTTP client (the SSRF guard,
  pinned addresses, explicit time-outs, no redirects), with
  ``X-hookstream-Signature: sha256=<hex HMAC-SHA256 of the body>`` when the channel has a
  secret. Any 2xx is sent.
* email: Django's email backend (``EMAIL_*`` settings), a plain-text message.

A failed send is retried by the task (``NOTIFICATION_RETRY_SECONDS``), then marked failed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from hookstream import crypto, outbound
from monitoring import prometheus
from monitoring.models import ChannelType, Notification, NotificationChannel, NotificationStatus

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-hookstream-Signature"
NOTIFICATION_RETRY_SECONDS = (10, 60, 300, 900, 3600)
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0


class SendFailed(Exception):
    """The channel did not take the message (the text says why); worth retrying."""


def notification_create(*, channel: NotificationChannel, payload: dict, rule=None) -> Notification:
    """Store the message and wake a worker to send it once the transaction commits."""
    notification = Notification.objects.create(
        organization_id=channel.organization_id, channel=channel, rule=rule, payload=payload
    )
    # By name: the task module imports this one.
    transaction.on_commit(lambda: current_app.send_task("monitoring.notification_send", (notification.pk,)))
    return notification


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_webhook(channel: NotificationChannel, payload: dict) -> None:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "hookstream-alerts/1"}
    secret = crypto.decrypt(channel.config["secret"]) if channel.config.get("secret") else ""
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    try:
        response = outbound.request(
            "POST",
            channel.config["url"],
            body=body,
            headers=headers,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )
    except Exception as exc:  # SSRF refusal, connection, time-out: all reported the same way
        raise SendFailed(f"{type(exc).__name__}: {exc}") from None
    try:
        response.read(65536)
    finally:
        response.release_conn()
    if not 200 <= response.status < 300:
        raise SendFailed(f"the webhook answered HTTP {response.status}")


def email_subject(payload: dict) -> str:
    return f"[hookstream] {payload.get('title') or payload.get('message') or 'Alert'}"[:200]


def email_text(payload: dict) -> str:
    lines = [payload.get("message", ""), ""]
    for label, key in (("Rule", "alert_rule"), ("Destination", "destination"), ("Source", "source")):
        value = payload.get(key)
        if value:
            lines.append(f"{label}: {value.get('name')} ({value.get('id')})")
    if payload.get("value") is not None:
        lines.append(f"Value: {payload['value']} (threshold {payload.get('threshold')})")
    if payload.get("last_error"):
        lines.append(f"Last error: {payload['last_error']}")
    if payload.get("console_url"):
        lines += ["", f"Open in the console: {payload['console_url']}"]
    return "\n".join(lines) + "\n"


def _send_email(channel: NotificationChannel, payload: dict) -> None:
    try:
        send_mail(
            email_subject(payload),
            email_text(payload),
            settings.DEFAULT_FROM_EMAIL,
            list(channel.config["to"]),
            fail_silently=False,
        )
    except Exception as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from None


def notification_deliver(*, notification_id: str) -> bool | None:
    """Send once. True: sent; None: nothing to do (sent already, or gone); raises SendFailed
    (after recording the error) when it should be tried again."""
    notification = Notification.objects.select_related("channel").filter(pk=notification_id).first()
    if notification is None or notification.status != NotificationStatus.PENDING:
        return None
    Notification.objects.filter(pk=notification.pk).update(attempt_count=F("attempt_count") + 1)
    channel = notification.channel
    try:
        if channel.channel_type == ChannelType.WEBHOOK:
            _send_webhook(channel, notification.payload)
        else:
            _send_email(channel, notification.payload)
    except SendFailed as exc:
        Notification.objects.filter(pk=notification.pk).update(last_error=str(exc)[:2000])
        prometheus.NOTIFICATIONS.labels(channel.channel_type, "failed").inc()
        logger.warning(
            "notification %s to channel %s (%s) failed: %s", notification.pk, channel.pk, channel.channel_type, exc
        )
        raise
    Notification.objects.filter(pk=notification.pk, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    prometheus.NOTIFICATIONS.labels(channel.channel_type, "sent").inc()
    logger.info("notification %s sent to channel %s (%s)", notification.pk, channel.pk, channel.channel_type)
    return True


def notification_give_up(*, notification_id: str) -> None:
    Notification.objects.filter(pk=notification_id, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.FAILED
    )
    logger.error("notification %s failed after its retries", notification_id)


# A pending notification not tried for this long lost its wake-up (broker flushed, message lost).
REWAKE_AFTER = timedelta(minutes=2)


def notifications_rewake(*, now=None) -> int:
    """Beat: send a new wake-up for pending notifications never tried since REWAKE_AFTER
    (the database, not the broker, is the truth about what is left to send)."""
    now = now or timezone.now()
    ids = list(
        Notification.objects.filter(
            status=NotificationStatus.PENDING, attempt_count=0, created_at__lt=now - REWAKE_AFTER
        ).values_list("pk", flat=True)[:500]
    )
    for notification_id in ids:
        current_app.send_task("monitoring.notification_send", (notification_id,))
    return len(ids)
