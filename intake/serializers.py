"""Intake serializers: for each resource one for what clients send and one for what they get.

Input serializers check each field's shape (no coercion of JSON types, unknown fields are
400s); rules across fields or rows live in ``intake.services``.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from destinations.serializers import StrictBooleanField, StrictCharField, StrictIntegerField
from hookstream import crypto
from hookstream.public_url import public_url
from intake.models import (
    Connection,
    DedupStrategy,
    Event,
    SchemaMode,
    Source,
    SourceStatus,
    Subscription,
    Topic,
    VerificationType,
)
from intake.source_templates import all_source_templates

SLUG_RE = re.compile(r"^[a-z0-9-]+$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
MAX_DEDUP_WINDOW_SECONDS = 7 * 24 * 3600
MAX_IP_ENTRIES = 500


class StrictInputSerializer(serializers.Serializer):
    """Refuses unknown fields (a typo must not be silently ignored); read-only fields a client
    echoes back from a response are dropped."""

    echo_fields: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        data = {k: v for k, v in data.items() if k not in self.echo_fields}
        unknown = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**unknown, **exc.detail}) from None
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


def _validate_slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise serializers.ValidationError("Must match ^[a-z0-9-]+$ (lowercase letters, digits and hyphens).")
    return value


def _validate_name(value: str) -> str:
    if not value.strip():
        raise serializers.ValidationError("May not be blank.")
    return value


# --- sources -------------------------------------------------------------------------------


class SourceWriteSerializer(StrictInputSerializer):
    """The body of ``POST /v1/sources`` and ``PATCH /v1/sources/{id}`` (every field optional here;
    ``name`` is required on create)."""

    echo_fields = frozenset(
        {"id", "event_count", "last_event_at", "verification_failure_count", "ingest_url"}
        | {"created_at", "updated_at"}
    )

    template = serializers.ChoiceField(
        choices=[template.id for template in all_source_templates()],
        required=False,
        help_text="Fill the verification preset, dedup key, name and setup steps of a sender "
        "(GET /v1/sources/templates); fields given in the same request win.",
    )
    name = StrictCharField(required=False, max_length=200)
    slug = StrictCharField(required=False, max_length=100, help_text="^[a-z0-9-]+$; derived from name if absent.")
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)
    verification_type = serializers.ChoiceField(choices=VerificationType.choices, required=False, allow_null=True)
    verification_secret = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=1000,
        help_text="Stored encrypted; answered masked. Send the masked value back to keep it.",
    )
    verification_header = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="hmac_*: the header with the signature (default X-Hub-Signature-256 / X-Hub-Signature).",
    )
    verification_prefix = StrictCharField(
        required=False, allow_blank=True, max_length=50, help_text='hmac_*: a prefix before the digest, e.g. "sha256=".'
    )
    dedup_enabled = StrictBooleanField(required=False)
    dedup_strategy = serializers.ChoiceField(choices=DedupStrategy.choices, required=False, allow_null=True)
    dedup_field = StrictCharField(
        required=False, allow_blank=True, max_length=200, help_text="header_field: a header; body_field: a.b path."
    )
    dedup_window_seconds = StrictIntegerField(required=False, min_value=1, max_value=MAX_DEDUP_WINDOW_SECONDS)
    ip_allowlist = serializers.ListField(
        child=StrictCharField(max_length=64), required=False, max_length=MAX_IP_ENTRIES
    )
    ip_denylist = serializers.ListField(child=StrictCharField(max_length=64), required=False, max_length=MAX_IP_ENTRIES)
    schema = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="A JSON Schema every event body must match (null: none).",
    )
    schema_mode = serializers.ChoiceField(
        choices=SchemaMode.choices,
        required=False,
        help_text="reject: a body that does not match answers 422 and is not stored; "
        "warn: it is stored with schema_status invalid and its schema_errors.",
    )
    status = serializers.ChoiceField(choices=SourceStatus.choices, required=False)

    def validate_slug(self, value):
        return _validate_slug(value)

    def validate_name(self, value):
        return _validate_name(value)

    def validate_verification_header(self, value):
        if value and not HEADER_NAME_RE.match(value):
            raise serializers.ValidationError(f"{value!r} is not a valid header name.")
        return value

    def validate(self, attrs):
        if attrs.get("dedup_strategy") == DedupStrategy.HEADER_FIELD and attrs.get("dedup_field"):
            self.validate_verification_header(attrs["dedup_field"])
        return attrs


class SourceTemplateSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(help_text="The signing scheme, setup steps and where the secret is.")
    verification_type = serializers.CharField(allow_null=True)
    verification_header = serializers.CharField(allow_blank=True)
    headers = serializers.ListField(child=serializers.CharField(), help_text="The headers the sender signs with.")
    scheme = serializers.CharField()
    secret_hint = serializers.CharField(help_text="Where to find the secret at the sender.")
    setup_steps = serializers.ListField(child=serializers.CharField())
    dedup_strategy = serializers.CharField(allow_null=True)
    dedup_field = serializers.CharField(allow_blank=True)
    docs_url = serializers.CharField(allow_blank=True)


class SourceTemplateListSerializer(serializers.Serializer):
    templates = SourceTemplateSerializer(many=True)


class SourceSerializer(serializers.ModelSerializer):
    verification_secret = serializers.SerializerMethodField(help_text="Masked: the last 4 characters.")
    ingest_url = serializers.SerializerMethodField()

    class Meta:
        model = Source
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "template",
            "ingest_url",
            "verification_type",
            "verification_secret",
            "verification_header",
            "verification_prefix",
            "dedup_enabled",
            "dedup_strategy",
            "dedup_field",
            "dedup_window_seconds",
            "ip_allowlist",
            "ip_denylist",
            "schema",
            "schema_mode",
            "status",
            "event_count",
            "last_event_at",
            "verification_failure_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_verification_secret(self, source) -> str | None:
        if not source.verification_secret:
            return None
        return crypto.mask(crypto.decrypt(source.verification_secret))

    def get_ingest_url(self, source) -> str:
        return public_url(self.context.get("request"), f"/v1/ingest/{source.pk}")


# --- connections, topics, subscriptions ------------------------------------------------------------

FILTER_RULES_HELP = (
    'Rules {"field","op","value"}, all AND-ed; ops eq, neq, contains, gt, gte, lt, lte, exists, in; '
    "fields payload.a.b, headers.<name>, method, content_type, source_ip."
)
TRANSFORM_HELP = "JSONata over the event body; must produce a JSON object."


class RouteFieldsMixin(serializers.Serializer):
    # Any JSON here: the services say precisely what is wrong with a rule or an expression.
    filter_rules = serializers.JSONField(required=False, allow_null=True, help_text=FILTER_RULES_HELP)
    transform_expression = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False, help_text=TRANSFORM_HELP
    )


class ConnectionWriteSerializer(RouteFieldsMixin, StrictInputSerializer):
    echo_fields = frozenset({"id", "created_at", "updated_at"})

    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    source_id = StrictCharField(required=False, max_length=40)
    destination_id = StrictCharField(required=False, max_length=40)
    enabled = StrictBooleanField(required=False)


class ConnectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Connection
        fields = [
            "id",
            "name",
            "source_id",
            "destination_id",
            "filter_rules",
            "transform_expression",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SubscriptionWriteSerializer(RouteFieldsMixin, StrictInputSerializer):
    echo_fields = frozenset({"id", "topic_id", "created_at"})

    destination_id = StrictCharField(required=False, max_length=40)


class SubscriptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subscription
        fields = ["id", "topic_id", "destination_id", "filter_rules", "transform_expression", "created_at"]
        read_only_fields = fields


class TopicWriteSerializer(StrictInputSerializer):
    echo_fields = frozenset({"id", "publish_url", "subscriptions", "created_at", "updated_at"})

    name = StrictCharField(required=False, max_length=200)
    slug = StrictCharField(required=False, max_length=100, help_text="^[a-z0-9-]+$; derived from name if absent.")
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)

    def validate_slug(self, value):
        return _validate_slug(value)

    def validate_name(self, value):
        return _validate_name(value)


class TopicSerializer(serializers.ModelSerializer):
    publish_url = serializers.SerializerMethodField()

    class Meta:
        model = Topic
        fields = ["id", "name", "slug", "description", "publish_url", "created_at", "updated_at"]
        read_only_fields = fields

    def get_publish_url(self, topic) -> str:
        return public_url(self.context.get("request"), f"/v1/topics/{topic.slug}/publish")


class TopicDetailSerializer(TopicSerializer):
    subscriptions = SubscriptionSerializer(many=True, read_only=True)

    class Meta(TopicSerializer.Meta):
        fields = [*TopicSerializer.Meta.fields, "subscriptions"]
        read_only_fields = fields


class PublishedSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    topic = serializers.CharField(help_text="The topic's slug.")
    received_at = serializers.DateTimeField()


class IngestedSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    source_id = serializers.CharField()
    deduplicated = serializers.BooleanField(required=False, help_text="Only on a duplicate inside the window.")


# --- events ----------------------------------------------------------------------------------------


class EventSerializer(serializers.ModelSerializer):
    status = serializers.CharField(
        read_only=True, help_text="pending, delivered, failed, partially_delivered or no_deliveries."
    )

    class Meta:
        model = Event
        fields = [
            "id",
            "source_id",
            "topic_id",
            "status",
            "method",
            "content_type",
            "body_size",
            "source_ip",
            "idempotency_key",
            "verification_status",
            "dedup_status",
            "schema_status",
            "received_at",
            "created_at",
        ]
        read_only_fields = fields
