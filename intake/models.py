"""Intake: where events come from (sources and topics), how they are routed
(connections and subscriptions), and the events themselves."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from destinations.models import Destination
from hookstream.ids import id_factory
from hookstream.models import Organization


class VerificationType(models.TextChoices):
    """How a source checks that a request comes from its sender (``intake.verification``)."""

    HMAC_SHA256 = "hmac_sha256"
    HMAC_SHA1 = "hmac_sha1"
    STANDARD_WEBHOOKS = "standard_webhooks"
    # Provider schemes that sign more than the body (a timestamp, the URL) or use no HMAC.
    STRIPE = "stripe"
    SLACK = "slack"
    TWILIO = "twilio"
    PADDLE = "paddle"
    SENDGRID = "sendgrid"
    BASIC_AUTH = "basic_auth"


class DedupStrategy(models.TextChoices):
    PAYLOAD_HASH = "payload_hash"
    HEADER_FIELD = "header_field"
    BODY_FIELD = "body_field"


class EventVerificationStatus(models.TextChoices):
    """Whether an event's sender was verified (a failed verification stores nothing)."""

    VERIFIED = "verified"
    UNVERIFIED = "unverified"  # the source checks no signature, or a topic publish


class DedupStatus(models.TextChoices):
    """What dedup did with an event that was stored (a duplicate is not stored)."""

    UNIQUE = "unique"  # its dedup key was claimed: the first inside the window
    NO_KEY = "no_key"  # dedup is on but the field it keys on was absent: not deduplicated
    DISABLED = "disabled"


class SchemaMode(models.TextChoices):
    REJECT = "reject"  # an event that does not match answers 422 and is not stored
    WARN = "warn"  # it is stored, with schema_status "invalid" and its errors


class SchemaStatus(models.TextChoices):
    NONE = "", "none"  # the source has no schema
    VALID = "valid"
    INVALID = "invalid"


class SourceStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"


class Source(models.Model):
    """An ingest endpoint for third-party webhooks (``/v1/ingest/<id>``)."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("src"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sources")
    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    # The source template it was made from (intake.source_templates), for the record.
    template = models.CharField(max_length=40, blank=True, default="")
    verification_type = models.CharField(max_length=32, choices=VerificationType.choices, null=True, blank=True)
    # Encrypted at rest (hookstream.crypto).
    verification_secret = models.TextField(blank=True, default="")
    verification_header = models.CharField(max_length=200, blank=True, default="")
    verification_prefix = models.CharField(max_length=50, blank=True, default="")
    dedup_enabled = models.BooleanField(default=False)
    dedup_strategy = models.CharField(max_length=32, choices=DedupStrategy.choices, null=True, blank=True)
    dedup_field = models.CharField(max_length=200, blank=True, default="")
    dedup_window_seconds = models.PositiveIntegerField(default=300)
    ip_allowlist = models.JSONField(default=list, blank=True)
    ip_denylist = models.JSONField(default=list, blank=True)
    # A JSON Schema every event body must match (intake.schemas), or null.
    schema = models.JSONField(null=True, blank=True)
    schema_mode = models.CharField(max_length=10, choices=SchemaMode.choices, default=SchemaMode.REJECT)
    status = models.CharField(max_length=20, choices=SourceStatus.choices, default=SourceStatus.ACTIVE)
    event_count = models.BigIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    verification_failure_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="uniq_source_slug")]
        indexes = [
            # The source list of an organization, newest first (cursor pagination).
            models.Index(fields=["organization", "-created_at", "-id"], name="source_org_created"),
        ]

    def __str__(self) -> str:
        return self.name


class Connection(models.Model):
    """Routes a source's events to a destination, through optional filters and a transform."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("conn"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="connections")
    name = models.CharField(max_length=200, blank=True, default="")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="connections")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="connections")
    filter_rules = models.JSONField(default=list, blank=True)
    transform_expression = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The connection list of an organization, newest first (cursor pagination).
            models.Index(fields=["organization", "-created_at", "-id"], name="connection_org_created"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} → {self.destination_id}"


class Topic(models.Model):
    """A named stream the organization's own applications publish to."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("top"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="topics")
    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="uniq_topic_slug")]
        indexes = [models.Index(fields=["organization", "-created_at", "-id"], name="topic_org_created")]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """Routes a topic's events to a destination, through optional filters and a transform."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("sub"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="subscriptions")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="subscriptions")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="subscriptions")
    filter_rules = models.JSONField(default=list, blank=True)
    transform_expression = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "destination"], name="uniq_subscription")]

    def __str__(self) -> str:
        return f"{self.topic_id} → {self.destination_id}"


class Event(models.Model):
    """One received event, stored byte-exact, from a source's ingest URL or a topic publish."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("evt"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    method = models.CharField(max_length=10, default="POST")
    headers = models.JSONField(default=dict, blank=True)
    query = models.JSONField(default=dict, blank=True)
    content_type = models.CharField(max_length=200, blank=True, default="")
    body = models.BinaryField(default=b"")
    # The body parsed as JSON when it is JSON (for filters and transforms); null otherwise.
    payload = models.JSONField(null=True, blank=True)
    body_size = models.PositiveIntegerField(default=0)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # Database defaults too: events are also inserted by plain SQL (bench seeding, bulk tools).
    verification_status = models.CharField(
        max_length=20,
        choices=EventVerificationStatus.choices,
        default=EventVerificationStatus.UNVERIFIED,
        db_default=EventVerificationStatus.UNVERIFIED,
    )
    dedup_status = models.CharField(
        max_length=20, choices=DedupStatus.choices, default=DedupStatus.DISABLED, db_default=DedupStatus.DISABLED
    )
    schema_status = models.CharField(max_length=10, choices=SchemaStatus.choices, blank=True, default="", db_default="")
    # The schema validation errors of an event stored under schema_mode "warn".
    schema_errors = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The event list of an organization, newest first (cursor pagination).
            models.Index(fields=["organization", "-created_at", "-id"], name="event_org_created"),
            models.Index(fields=["source", "-created_at"], name="event_source_created"),
            # Retention purge by age.
            models.Index(fields=["created_at"], name="event_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "topic", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="uniq_event_idempotency",
            )
        ]

    def __str__(self) -> str:
        return self.id


class DedupKey(models.Model):
    """The dedup key of a source's event, held for the source's dedup window.

    The unique constraint on (source, key) is what makes dedup race-safe: of several
    concurrent identical requests exactly one inserts the key; the others wait for it to
    commit and then find the original event. An expired key is taken over with a
    conditional UPDATE rather than deleted, so the takeover is race-safe too.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="dedup_keys")
    # sha256 hex of the strategy and the value it picked (header, body field or whole body).
    key = models.CharField(max_length=64)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="uniq_dedup_key")]
        indexes = [
            # Purging expired keys.
            models.Index(fields=["expires_at"], name="dedup_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.key}"
