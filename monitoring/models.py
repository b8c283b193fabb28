"""Monitoring: issues, alert rules, notification channels and their sends, metric rollups."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from destinations.models import Destination
from hookstream.ids import id_factory
from hookstream.models import Organization
from intake.models import Source


class ErrorType(models.TextChoices):
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    CIRCUIT_OPEN = "circuit_open"
    TRANSFORM_FAILED = "transform_failed"
    REFUSED = "refused"  # the SSRF guard or an invalid URL: nothing was sent
    PROVIDER_ERROR = "provider_error"  # a non-HTTP destination's client reported an error


class IssueStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Issue(models.Model):
    """Failures of one destination of one kind, grouped: opened by the first, counted after,
    resolved by beat once none has happened for ``HOOKSTREAM_ISSUE_RESOLVE_MINUTES``."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("iss"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="issues")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="issues")
    error_type = models.CharField(max_length=32, choices=ErrorType.choices)
    # The latest occurrence's error.
    message = models.TextField(blank=True, default="")
    status = models.CharField(max_length=20, choices=IssueStatus.choices, default=IssueStatus.OPEN)
    occurrence_count = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    # The latest failed attempts (newest first, at most RECENT_ATTEMPTS).
    recent_attempt_ids = models.JSONField(default=list, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    RECENT_ATTEMPTS = 10

    class Meta:
        constraints = [
            # One unresolved issue per destination and kind: a new failure counts on it.
            models.UniqueConstraint(
                fields=["destination", "error_type"],
                condition=~Q(status="resolved"),
                name="issue_one_unresolved",
            ),
        ]
        indexes = [
            # The issue list of an organization, newest first (cursor pagination).
            models.Index(fields=["organization", "-created_at", "-id"], name="issue_org_created"),
            # Beat's auto-resolve: unresolved issues by last occurrence.
            models.Index(fields=["last_seen_at"], name="issue_unresolved_seen", condition=~Q(status="resolved")),
        ]

    def __str__(self) -> str:
        return self.id


class ChannelType(models.TextChoices):
    WEBHOOK = "webhook"
    EMAIL = "email"


class NotificationChannel(models.Model):
    """Where alerts go: a webhook (signed when it has a secret) or email addresses."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("nc"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notification_channels")
    name = models.CharField(max_length=200)
    channel_type = models.CharField(max_length=20, choices=ChannelType.choices)
    # webhook {url, secret?} (secret encrypted at rest); email {to: [addresses]}
    config = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at", "-id"], name="channel_org_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.channel_type})"


class RuleType(models.TextChoices):
    FAILURE_RATE = "failure_rate"
    LATENCY = "latency"
    VOLUME_DROP = "volume_drop"
    DLQ = "dlq"
    ISSUE_OPENED = "issue_opened"


class AlertRule(models.Model):
    """A condition evaluated by beat every minute; it notifies its channels at most once per
    ``cooldown_minutes``."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("ar"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200)
    rule_type = models.CharField(max_length=20, choices=RuleType.choices)
    rule_config = models.JSONField(default=dict, blank=True)
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    destination = models.ForeignKey(Destination, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="rules")
    cooldown_minutes = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    # Up to when beat has looked (issue_opened: issues opened after this are new).
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at", "-id"], name="rule_org_created")]

    def __str__(self) -> str:
        return self.name


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(models.Model):
    """One message to one channel (an alert, or a test), sent by a worker with retries."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("ntf"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notifications")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="notifications")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.id


class DeliveryRollup(models.Model):
    """One destination's attempts in one hour: counts and a latency histogram.

    Beat adds what happened since its last run (``monitoring.rollups``), so an hour's row is
    complete about a minute after the hour ends. The histogram's buckets are
    ``monitoring.rollups.LATENCY_BOUNDS_MS``; histograms add up, so a day's percentiles come
    from the sum of its hours.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField()
    attempt_count = models.PositiveIntegerField(default=0)
    success_count = models.PositiveIntegerField(default=0)
    failure_count = models.PositiveIntegerField(default=0)
    dead_letter_count = models.PositiveIntegerField(default=0)
    duration_sum_ms = models.BigIntegerField(default=0)
    latency_histogram = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["destination", "bucket"], name="rollup_destination_bucket")]
        # The series of an organization over a range.
        indexes = [models.Index(fields=["organization", "bucket"], name="rollup_org_bucket")]


class VolumeRollup(models.Model):
    """Events received in one hour by one source (``source`` null: published to topics)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField()
    event_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organization", "bucket"], name="volume_org_bucket")]


class RollupState(models.Model):
    """One row: how far beat has rolled raw rows up (exclusive upper bound)."""

    name = models.CharField(primary_key=True, max_length=40)
    rolled_until = models.DateTimeField()
