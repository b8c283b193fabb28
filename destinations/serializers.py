"""Destination serializers: one for what clients send, one for what they get back.

The input serializer checks each field's shape and bounds and accepts the other spellings
of spec §3 (``config`` for ``provider_config``, ``timeout`` in seconds, ``aws_sqs``…);
rules that need the type or the stored row are in ``destinations.services``.
"""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from destinations import selectors
from destinations.models import (
    TYPE_ALIASES,
    BackoffType,
    CircuitState,
    Destination,
    DestinationStatus,
    DestinationType,
    HttpMethod,
)
from destinations.providers import REGISTRY
from hookstream.api.serializers import StrictBooleanField, StrictCharField, StrictFloatField, StrictIntegerField
from hookstream.headers import MAX_HEADERS, headers_errors

SLUG_RE = re.compile(r"^[a-z0-9-]+$")
# Headers the delivery engine sets itself; a destination may not override them.
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
MAX_RETRY_INTERVAL_SECONDS = 7 * 24 * 3600
MAX_TIMEOUT_MS = 120_000
MIN_TIMEOUT_MS = 100

# Fields of a response a client may send back unchanged (e.g. PATCH with a fetched object).
READ_ONLY_ECHO = {"id", "delivery_count", "created_at", "updated_at"}


class JSONObjectField(serializers.DictField):
    """A JSON object (DRF's DictField also takes nothing else, but say so plainly)."""

    default_error_messages = {"not_a_dict": "Must be a JSON object."}


class DestinationWriteSerializer(serializers.Serializer):
    """The body of ``POST /v1/destinations`` and ``PATCH /v1/destinations/{id}``.

    Every field is optional at this level; ``name`` and ``type`` (or ``template``) are
    required on create, which the service checks after applying the template.
    """

    name = StrictCharField(required=False, max_length=200)
    slug = StrictCharField(
        required=False, max_length=100, help_text="^[a-z0-9-]+$, unique per organization; derived from name if absent."
    )
    type = StrictCharField(
        required=False,
        help_text="http, sqs, s3, eventbridge, pubsub, kafka, rabbitmq or websocket "
        "(aws_sqs, aws_s3, aws_eventbridge, gcp_pubsub accepted).",
    )
    template = StrictCharField(
        required=False, allow_blank=True, help_text="A template id from GET /v1/destinations/templates."
    )
    url = StrictCharField(required=False, allow_blank=True, max_length=2048, help_text="Required for http.")
    method = StrictCharField(required=False, help_text="POST (default), PUT or PATCH.")
    headers = JSONObjectField(child=serializers.JSONField(), required=False)
    provider_config = JSONObjectField(child=serializers.JSONField(allow_null=True), required=False)
    config = JSONObjectField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        write_only=True,
        help_text="Another spelling of provider_config.",
    )
    signing_config = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='{secret, algorithm sha256|sha1, header, prefix, include_timestamp} or {"mode": '
        '"standard_webhooks", "secret": "whsec_…"}; null turns signing off.',
    )
    timeout_ms = StrictIntegerField(required=False, min_value=MIN_TIMEOUT_MS, max_value=MAX_TIMEOUT_MS)
    timeout = StrictFloatField(
        required=False,
        min_value=MIN_TIMEOUT_MS / 1000,
        max_value=MAX_TIMEOUT_MS / 1000,
        write_only=True,
        help_text="Another spelling of timeout_ms, in seconds.",
    )
    retry_max_attempts = StrictIntegerField(required=False, min_value=1, max_value=10)
    retry_backoff_type = serializers.ChoiceField(choices=BackoffType.choices, required=False)
    retry_intervals = serializers.ListField(
        child=StrictIntegerField(min_value=0, max_value=MAX_RETRY_INTERVAL_SECONDS),
        min_length=1,
        max_length=20,
        required=False,
        help_text="Seconds; default [30, 300, 1800, 7200, 86400].",
    )
    retry_jitter = StrictBooleanField(required=False)
    circuit_breaker_enabled = StrictBooleanField(required=False)
    circuit_breaker_threshold = StrictIntegerField(required=False, min_value=1, max_value=1000)
    circuit_breaker_reset_ms = StrictIntegerField(required=False, min_value=100, max_value=7 * 24 * 3600 * 1000)
    max_concurrency = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=1000)
    rate_limit_per_second = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=10000)
    status = serializers.ChoiceField(choices=DestinationStatus.choices, required=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            return super().to_internal_value(data)
        # A typo ("retry_max_attempt") must not be silently ignored; echoed read-only fields are.
        unknown = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields) - READ_ONLY_ECHO)}
        try:
            value = super().to_internal_value({k: v for k, v in data.items() if k not in READ_ONLY_ECHO})
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**unknown, **exc.detail}) from None
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def validate_slug(self, value):
        if not SLUG_RE.match(value):
            raise serializers.ValidationError("Must match ^[a-z0-9-]+$ (lowercase letters, digits and hyphens).")
        return value

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("May not be blank.")
        return value

    def validate_type(self, value):
        normalized = TYPE_ALIASES.get(value.strip().lower(), value.strip().lower())
        if normalized not in REGISTRY:
            allowed = ", ".join(REGISTRY)
            raise serializers.ValidationError(f"Unknown type {value!r}; one of: {allowed}.")
        return normalized

    def validate_method(self, value):
        if value.upper() not in HttpMethod.values:
            raise serializers.ValidationError(f"Must be one of: {', '.join(HttpMethod.values)}.")
        return value.upper()

    def validate_headers(self, value):
        errors = headers_errors(value, max_count=MAX_HEADERS)
        errors += [
            f"{name} is set by hookstream and cannot be configured."
            for name in value
            if isinstance(name, str) and name.lower() in RESERVED_HEADERS
        ]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate(self, attrs):
        errors = {}
        if "config" in attrs:
            if "provider_config" in attrs:
                errors["config"] = ["Give provider_config or config, not both."]
            else:
                attrs["provider_config"] = attrs.pop("config")
        if "timeout" in attrs:
            if "timeout_ms" in attrs:
                errors["timeout"] = ["Give timeout_ms or timeout, not both."]
            else:
                attrs["timeout_ms"] = round(attrs.pop("timeout") * 1000)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class DestinationSerializer(serializers.ModelSerializer):
    """A destination as every response shows it: secrets masked (``****`` + last 4)."""

    provider_config = serializers.SerializerMethodField()
    signing_config = serializers.SerializerMethodField()
    delivery_count = serializers.IntegerField(read_only=True, default=0)
    retry_intervals = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    headers = serializers.SerializerMethodField()

    class Meta:
        model = Destination
        fields = [
            "id",
            "name",
            "slug",
            "type",
            "url",
            "method",
            "headers",
            "provider_config",
            "signing_config",
            "template",
            "timeout_ms",
            "retry_max_attempts",
            "retry_backoff_type",
            "retry_intervals",
            "retry_jitter",
            "circuit_breaker_enabled",
            "circuit_breaker_threshold",
            "circuit_breaker_reset_ms",
            "max_concurrency",
            "rate_limit_per_second",
            "status",
            "delivery_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_headers(self, obj) -> dict[str, str]:
        return selectors.masked_headers(obj)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_provider_config(self, obj) -> dict:
        return selectors.masked_provider_config(obj)

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True})
    def get_signing_config(self, obj):
        return selectors.masked_signing_config(obj)


class CircuitSerializer(serializers.ModelSerializer):
    destination_id = serializers.CharField(read_only=True)

    class Meta:
        model = CircuitState
        fields = [
            "destination_id",
            "state",
            "failure_count",
            "last_failure_at",
            "opened_at",
            "half_opened_at",
            "closed_at",
            "last_success_at",
        ]
        read_only_fields = fields


class TemplateSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=DestinationType.choices)
    description = serializers.CharField()
    config_template = serializers.DictField(
        help_text="Shaped like the body of POST /v1/destinations: empty strings are yours to fill in."
    )
    shapes_body = serializers.BooleanField(help_text="Whether deliveries get the service's own body shape.")


class TemplateListSerializer(serializers.Serializer):
    templates = TemplateSerializer(many=True)


__all__ = [
    "CircuitSerializer",
    "DestinationSerializer",
    "DestinationWriteSerializer",
    "TemplateListSerializer",
    "TemplateSerializer",
]
