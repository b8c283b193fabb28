"""Deliveries: one row per (event, destination route), its attempts, and the dead letters.

The database is the truth about every delivery; the broker only carries wake-ups.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from destinations.models import Destination
from hookstream.ids import id_factory
from hookstream.models import Organization
from intake.models import Connection, Event, Source, Subscription


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # due now, waiting for a worker
    IN_FLIGHT = "in_flight"  # claimed by a worker (leased)
    SUCCEEDED = "succeeded"
    SCHEDULED = "scheduled"  # waiting for its next retry at next_attempt_at
    HELD = "held"  # held by an open circuit or a paused destination
    DEAD = "dead"  # in the dead letter queue
    CANCELLED = "cancelled"  # its destination was deleted


# A delivery in one of these states is still owed to its destination: it makes its event
# ``pending``, and retention keeps its event. (The partial index ``delivery_event_unfinished``
# below spells the same list out, as migrations need literal values.)
UNFINISHED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD)


class TriggerType(models.TextChoices):
    INITIAL = "initial"
    RETRY = "retry"
    MANUAL = "manual"
    REPLAY = "replay"


class Delivery(models.Model):
    """The state of delivering one event to one destination."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("dlv"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL)
    subscription = models.ForeignKey(Subscription, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    trigger_type = models.CharField(max_length=20, choices=TriggerType.choices, default=TriggerType.INITIAL)
    # The body after the route's transform (JSON), when it has one; else the event body is sent.
    transformed_payload = models.JSONField(null=True, blank=True)
    # The route has a transform that the worker has not applied yet: tenant code never runs
    # in the ingest request; the worker evaluates it in the sandbox before the first attempt.
    transform_pending = models.BooleanField(default=False, db_default=False)  # raw INSERTs (bench) omit it
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # When a wake-up (a broker message) was last sent or is expected for this delivery. Beat
    # re-sends a wake-up only when a due delivery has none younger than the grace period,
    # so a lost broker message (Redis flushed) costs a short delay, not a delivery.
    woken_at = models.DateTimeField(null=True, blank=True)
    # attempt_count when the current retry cycle began: a manual retry, a replay or a dead
    # letter retry starts a fresh cycle of retry_max_attempts retries.
    cycle_start_attempt = models.PositiveIntegerField(default=0)
    # The replay or dead-letter-retry job that created (or re-queued) this delivery.
    replay_job = models.ForeignKey(
        "deliveries.ReplayJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # Beat: due deliveries (pending/scheduled with next_attempt_at <= now).
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=Q(status__in=["pending", "scheduled"]),
            ),
            # The engine's batch claim: a destination's due deliveries, oldest due first.
            models.Index(
                fields=["destination", "next_attempt_at"],
                name="delivery_dest_due",
                condition=Q(status__in=["pending", "scheduled"]),
            ),
            # Beat: expired leases of crashed workers.
            models.Index(fields=["lease_expires_at"], name="delivery_leased", condition=Q(status="in_flight")),
            # Circuit: held deliveries of a destination, oldest first.
            models.Index(fields=["destination", "status", "created_at"], name="delivery_dest_status"),
            # Beat's held sweep: which destinations hold deliveries at all (a small set).
            models.Index(fields=["destination", "created_at"], name="delivery_held", condition=Q(status="held")),
            # Event detail and event status.
            models.Index(fields=["event"], name="delivery_event"),
            # The event list's pending filter (deliveries.selectors): unfinished deliveries only.
            models.Index(
                fields=["event"],
                name="delivery_event_unfinished",
                condition=Q(status__in=["pending", "in_flight", "scheduled", "held"]),
            ),
        ]

    def __str__(self) -> str:
        return self.id


class AttemptStatus(models.TextChoices):
    SUCCESS = "success"
    FAILED = "failed"
    PENDING = "pending"


class DeliveryAttempt(models.Model):
    """One try of a delivery, with what was sent and what came back (spec §6)."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("da"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="delivery_attempts")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="delivery_attempts")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="delivery_attempts")
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL)
    attempt_number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=AttemptStatus.choices, default=AttemptStatus.PENDING)
    request_url = models.CharField(max_length=2048, blank=True, default="")
    # An HTTP method or a provider operation name (SendMessage, PutEvents, basic.publish…).
    request_method = models.CharField(max_length=32, blank=True, default="")
    request_headers = models.JSONField(default=dict, blank=True)
    request_body_size = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)
    is_dlq = models.BooleanField(default=False)
    dlq_at = models.DateTimeField(null=True, blank=True)
    trigger_type = models.CharField(max_length=20, choices=TriggerType.choices, default=TriggerType.INITIAL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The attempt list of an organization, newest first (cursor pagination).
            models.Index(fields=["organization", "-created_at", "-id"], name="attempt_org_created"),
            models.Index(fields=["destination", "-created_at"], name="attempt_dest_created"),
            models.Index(fields=["event", "created_at"], name="attempt_event"),
        ]

    def __str__(self) -> str:
        return self.id


class DeadLetterReason(models.TextChoices):
    RETRIES_EXHAUSTED = "retries_exhausted"
    PERMANENT_FAILURE = "permanent_failure"
    CIRCUIT_OPEN = "circuit_open"
    TRANSFORM_FAILED = "transform_failed"
    TRANSFORM_LIMIT = "transform_limit"  # the transform breached its time or memory limit


class DeadLetter(models.Model):
    """A delivery that gave up; it stays until retried or purged."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("dlq"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="dead_letters")
    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="dead_letter")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="dead_letters")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="dead_letters")
    reason = models.CharField(max_length=32, choices=DeadLetterReason.choices)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # A destination's dead letters, newest first, and bulk retry by time range.
            models.Index(fields=["destination", "-created_at", "-id"], name="deadletter_dest_created"),
        ]

    def __str__(self) -> str:
        return self.id


class JobStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ReplayJob(models.Model):
    """A bulk job: replaying events of a time range, or retrying a destination's dead letters."""

    class Kind(models.TextChoices):
        REPLAY = "replay"
        DEAD_LETTER_RETRY = "dead_letter_retry"

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("rpl"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="replay_jobs")
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.REPLAY)
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="replay_jobs")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL)
    range_from = models.DateTimeField(null=True, blank=True)
    range_to = models.DateTimeField(null=True, blank=True)
    rate_limit = models.PositiveIntegerField(default=10)
    max_events = models.PositiveIntegerField(default=1000)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.RUNNING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.id


class DestinationDeliveryCount(models.Model):
    """How many deliveries each destination has, kept by the database (PostgreSQL).

    Statement triggers on the delivery table append one row per destination and statement
    (``+n`` for inserts, ``-n`` for deletes): appending takes no lock that concurrent ingests
    would queue on, unlike a counter column on the destination row. Beat folds the rows into
    one per destination (``deliveries.counters``). A destination's ``delivery_count`` is the
    sum of its rows: exact at every moment, and a page of the destination list reads a few
    rows per destination however many deliveries there are.
    """

    destination_id = models.CharField(max_length=40)
    n = models.BigIntegerField()

    class Meta:
        db_table = "deliveries_destination_delivery_count"
        indexes = [models.Index(fields=["destination_id"], name="delivery_count_destination")]
