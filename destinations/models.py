"""Destinations: where events are delivered, with their retry policy and circuit breaker."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from destinations.providers import REGISTRY, type_choices
from hookstream.ids import id_factory
from hookstream.models import Organization

DEFAULT_RETRY_INTERVALS = [30, 300, 1800, 7200, 86400]


def default_retry_intervals():
    return list(DEFAULT_RETRY_INTERVALS)


# The types built in (``DestinationType.HTTP`` …), read from the provider registry: there is
# no list of types to edit. Validation reads ``REGISTRY`` itself, so that a type registered
# later is accepted too; ``Destination.type``'s choices are the registry's at every check.
DestinationType = models.TextChoices(  # type: ignore[call-overload]
    "DestinationType", [(name.upper(), (name, provider.label or name)) for name, provider in REGISTRY.items()]
)


TYPE_ALIASES = {"aws_sqs": "sqs", "aws_s3": "s3", "aws_eventbridge": "eventbridge", "gcp_pubsub": "pubsub"}


class BackoffType(models.TextChoices):
    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    FIXED = "fixed"


class DestinationStatus(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class HttpMethod(models.TextChoices):
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"


class ActiveDestinationManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Destination(models.Model):
    """A delivery target of one type. Secrets in ``provider_config`` and ``signing_config``
    are stored encrypted (``hookstream.crypto``). Deleting sets ``deleted_at`` so that the
    history of deliveries and attempts keeps its destination."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("dst"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="destinations")
    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=100)
    # One of the registered provider types (destinations.providers); the choices are read
    # from the registry each time, so adding a type needs no migration.
    type = models.CharField(max_length=20, choices=type_choices)
    url = models.CharField(max_length=2048, blank=True, default="")
    method = models.CharField(max_length=10, choices=HttpMethod.choices, default=HttpMethod.POST)
    headers = models.JSONField(default=dict, blank=True)
    provider_config = models.JSONField(default=dict, blank=True)
    signing_config = models.JSONField(null=True, blank=True)
    template = models.CharField(max_length=64, blank=True, default="")
    timeout_ms = models.PositiveIntegerField(default=30000)
    retry_max_attempts = models.PositiveSmallIntegerField(default=5)
    retry_backoff_type = models.CharField(max_length=20, choices=BackoffType.choices, default=BackoffType.EXPONENTIAL)
    retry_intervals = models.JSONField(default=default_retry_intervals)
    retry_jitter = models.BooleanField(default=False)
    circuit_breaker_enabled = models.BooleanField(default=True)
    circuit_breaker_threshold = models.PositiveIntegerField(default=5)
    circuit_breaker_reset_ms = models.PositiveIntegerField(default=60000)
    # Per-destination limits (spec §7): at most this many attempts in flight at once, and
    # at most this many attempts per second. Null means unlimited.
    max_concurrency = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=DestinationStatus.choices, default=DestinationStatus.ACTIVE)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ActiveDestinationManager()
    all_objects = models.Manager()

    class Meta:
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"], condition=Q(deleted_at__isnull=True), name="uniq_destination_slug"
            ),
            models.CheckConstraint(
                condition=Q(retry_max_attempts__gte=1) & Q(retry_max_attempts__lte=10), name="destination_retry_bounds"
            ),
        ]
        indexes = [
            # The destination list of an organization, newest first (cursor pagination).
            models.Index(fields=["organization", "-created_at", "-id"], name="destination_org_created"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class CircuitStateValue(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitState(models.Model):
    """The circuit breaker of one destination; the delivery engine drives it (spec §3)."""

    destination = models.OneToOneField(Destination, primary_key=True, on_delete=models.CASCADE, related_name="circuit")
    state = models.CharField(max_length=20, choices=CircuitStateValue.choices, default=CircuitStateValue.CLOSED)
    failure_count = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    half_opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The one delivery allowed through while half_open.
    probe_delivery_id = models.CharField(max_length=40, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.destination_id}: {self.state}"
