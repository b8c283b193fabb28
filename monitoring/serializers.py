"""Serializers of the monitoring API (spec §8): issues, alert rules, notification channels."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework import serializers

from destinations.models import Destination
from hookstream import crypto
from hookstream.ssrf import literal_address_error
from intake.models import Source
from monitoring.models import AlertRule, ChannelType, Issue, IssueStatus, Notification, NotificationChannel, RuleType


class IssueSerializer(serializers.ModelSerializer):
    destination_name = serializers.CharField(source="destination.name", read_only=True)

    class Meta:
        model = Issue
        fields = [
            "id",
            "destination_id",
            "destination_name",
            "error_type",
            "message",
            "status",
            "occurrence_count",
            "first_seen_at",
            "last_seen_at",
            "snoozed_until",
            "acknowledged_at",
            "resolved_at",
            "created_at",
        ]
        read_only_fields = fields


class IssueDetailSerializer(IssueSerializer):
    class Meta(IssueSerializer.Meta):
        fields = [*IssueSerializer.Meta.fields, "recent_attempt_ids"]
        read_only_fields = fields


class IssueUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=IssueStatus.choices, required=False)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"status": ["Send status and/or snoozed_until."]})
        return attrs


class IssueSummarySerializer(serializers.Serializer):
    open = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    resolved = serializers.IntegerField()


class IssueRetryResultSerializer(serializers.Serializer):
    retried = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())


# --- notification channels ----------------------------------------------------------------

WEBHOOK_KEYS = {"url", "secret"}
EMAIL_KEYS = {"to"}


class NotificationChannelSerializer(serializers.ModelSerializer):
    """``{id "nc_…", name, channel_type webhook|email, config}``; the webhook secret is
    encrypted at rest and shown masked (``****`` + its last 4 characters)."""

    config = serializers.JSONField(
        help_text="webhook: {url, secret?} (X-hookstream-Signature: sha256=<hex> when a secret is set); "
        "email: {to: [addresses]}."
    )

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "channel_type", "config", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["config"] = channel_config_masked(instance.config)
        return data

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("Must not be blank.")
        return value

    def validate(self, attrs):
        channel_type = attrs.get("channel_type", getattr(self.instance, "channel_type", None))
        if (
            self.instance is not None
            and "channel_type" in attrs
            and attrs["channel_type"] != self.instance.channel_type
        ):
            if "config" not in attrs:
                raise serializers.ValidationError({"config": ["Required when channel_type changes."]})
        if "config" in attrs or self.instance is None:
            previous = (
                self.instance.config
                if self.instance is not None and self.instance.channel_type == channel_type
                else None
            )
            attrs["config"] = channel_config_clean(channel_type, attrs.get("config"), previous)
        return attrs


def channel_config_masked(config: dict) -> dict:
    return crypto.mask_fields(config or {}, ["secret"])


def channel_config_clean(channel_type: str, config, previous: dict | None) -> dict:
    """Validate a channel config (400 naming the field) and encrypt the webhook secret."""
    if not isinstance(config, dict):
        raise serializers.ValidationError({"config": ["Must be a JSON object."]})
    allowed = WEBHOOK_KEYS if channel_type == ChannelType.WEBHOOK else EMAIL_KEYS
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise serializers.ValidationError({"config": [f"Unknown keys: {', '.join(unknown)}."]})
    if channel_type == ChannelType.WEBHOOK:
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048:
            raise serializers.ValidationError({"config.url": ["Required: an http(s):// URL."]})
        refused = literal_address_error(url)
        if refused:
            raise serializers.ValidationError({"config.url": [refused]})
        secret = config.get("secret")
        if secret is not None and not isinstance(secret, str):
            raise serializers.ValidationError({"config.secret": ["Must be a string."]})
        cleaned = {"url": url}
        if secret:
            cleaned["secret"] = secret
            return crypto.encrypt_fields(cleaned, ["secret"], previous)
        return cleaned
    to = config.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or len(to) > 50:
        raise serializers.ValidationError({"config.to": ["Required: a list of 1 to 50 email addresses."]})
    for address in to:
        try:
            validate_email(address)
        except (DjangoValidationError, TypeError):
            raise serializers.ValidationError({"config.to": [f"{address!r} is not an email address."]}) from None
    return {"to": to}


# --- alert rules ---------------------------------------------------------------------------

PERCENTILES = ("p50", "p95", "p99")


class AlertRuleSerializer(serializers.ModelSerializer):
    source_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    destination_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    channel_ids = serializers.ListField(child=serializers.CharField(), required=False)
    rule_config = serializers.JSONField(
        required=False,
        help_text="failure_rate {threshold (fraction; a percent when > 1)}; latency {threshold_ms, "
        "percentile_target p50|p95|p99}; volume_drop {threshold (percent)}; dlq {threshold}; issue_opened {}. "
        "All but issue_opened accept window_minutes (default 5).",
    )
    cooldown_minutes = serializers.IntegerField(min_value=0, max_value=10080, required=False)

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "rule_type",
            "rule_config",
            "source_id",
            "destination_id",
            "channel_ids",
            "cooldown_minutes",
            "enabled",
            "last_triggered_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "last_triggered_at", "created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["channel_ids"] = sorted(instance.channels.values_list("id", flat=True)) if instance.pk else []
        data["source_id"] = instance.source_id
        data["destination_id"] = instance.destination_id
        return data

    def validate(self, attrs):
        organization = self.context["organization"]
        rule_type = attrs.get("rule_type", getattr(self.instance, "rule_type", None))
        if "rule_config" in attrs or self.instance is None or "rule_type" in attrs:
            config = attrs.get("rule_config", getattr(self.instance, "rule_config", None) or {})
            attrs["rule_config"] = rule_config_clean(rule_type, config)
        for name, model in (("source_id", Source), ("destination_id", Destination)):
            if name in attrs:
                value = attrs.pop(name) or None
                if value is not None and not model.objects.filter(organization=organization, pk=value).exists():
                    raise serializers.ValidationError({name: [f"No such {name[:-3]}."]})
                attrs[name[:-3]] = value and model.objects.get(pk=value)
        if "channel_ids" in attrs:
            wanted = list(dict.fromkeys(attrs["channel_ids"]))
            found = list(NotificationChannel.objects.filter(organization=organization, pk__in=wanted))
            missing = sorted(set(wanted) - {c.pk for c in found})
            if missing:
                raise serializers.ValidationError({"channel_ids": [f"No such channel: {', '.join(missing)}."]})
            attrs["channel_ids"] = found
        return attrs

    def create(self, validated_data):
        channels = validated_data.pop("channel_ids", [])
        rule = AlertRule.objects.create(**validated_data)
        rule.channels.set(channels)
        return rule

    def update(self, instance, validated_data):
        channels = validated_data.pop("channel_ids", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save()
        if channels is not None:
            instance.channels.set(channels)
        return instance


def _number(config: dict, key: str, *, required: bool = True, minimum: float = 0, maximum: float | None = None):
    value = config.get(key)
    if value is None:
        if required:
            raise serializers.ValidationError({f"rule_config.{key}": ["Required."]})
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise serializers.ValidationError({f"rule_config.{key}": ["Must be a number."]})
    if value < minimum or (maximum is not None and value > maximum):
        raise serializers.ValidationError({f"rule_config.{key}": [f"Must be between {minimum} and {maximum}."]})
    return value


def rule_config_clean(rule_type: str, config) -> dict:
    if not isinstance(config, dict):
        raise serializers.ValidationError({"rule_config": ["Must be a JSON object."]})
    allowed = {
        RuleType.FAILURE_RATE: {"threshold", "window_minutes", "min_attempts"},
        RuleType.LATENCY: {"threshold_ms", "percentile_target", "window_minutes"},
        RuleType.VOLUME_DROP: {"threshold", "window_minutes"},
        RuleType.DLQ: {"threshold", "window_minutes"},
        RuleType.ISSUE_OPENED: set(),
    }[rule_type]
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise serializers.ValidationError({"rule_config": [f"Unknown keys for {rule_type}: {', '.join(unknown)}."]})
    cleaned: dict = {}
    if "window_minutes" in allowed:
        cleaned["window_minutes"] = int(_number(config, "window_minutes", required=False, minimum=1, maximum=1440) or 5)
    if rule_type == RuleType.FAILURE_RATE:
        threshold = float(_number(config, "threshold", minimum=0, maximum=100))
        cleaned["threshold"] = threshold / 100 if threshold > 1 else threshold  # a percent when > 1
        cleaned["min_attempts"] = int(_number(config, "min_attempts", required=False, minimum=1, maximum=1e6) or 5)
    elif rule_type == RuleType.LATENCY:
        cleaned["threshold_ms"] = int(_number(config, "threshold_ms", minimum=1, maximum=600000))
        target = str(config.get("percentile_target", "p95")).lower()
        target = target if target.startswith("p") else f"p{target}"
        if target not in PERCENTILES:
            raise serializers.ValidationError({"rule_config.percentile_target": ["One of p50, p95, p99."]})
        cleaned["percentile_target"] = target
    elif rule_type == RuleType.VOLUME_DROP:
        cleaned["threshold"] = float(_number(config, "threshold", minimum=1, maximum=100))
    elif rule_type == RuleType.DLQ:
        cleaned["threshold"] = int(_number(config, "threshold", minimum=1, maximum=1e9))
    return cleaned


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "channel_id",
            "rule_id",
            "status",
            "attempt_count",
            "last_error",
            "payload",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields


# --- metrics (documentation of the answers) ---------------------------------------------------


def _series(name: str, fields: dict) -> type:
    row = type(f"{name}Point", (serializers.Serializer,), fields)
    return type(
        f"{name}Series",
        (serializers.Serializer,),
        {"series": row(many=True), "granularity": serializers.ChoiceField(choices=["minute", "hour", "day"])},
    )


VolumeSeriesSerializer = _series(
    "Volume",
    {
        "bucket": serializers.DateTimeField(),
        "source_id": serializers.CharField(allow_null=True),
        "source_name": serializers.CharField(allow_null=True),
        "event_count": serializers.IntegerField(),
    },
)
DeliverySeriesSerializer = _series(
    "Delivery",
    {
        "bucket": serializers.DateTimeField(),
        "destination_id": serializers.CharField(),
        "destination_name": serializers.CharField(allow_null=True),
        "delivery_count": serializers.IntegerField(help_text="Attempts in the bucket."),
        "success_count": serializers.IntegerField(),
        "failure_count": serializers.IntegerField(),
        "dead_letter_count": serializers.IntegerField(),
    },
)
LatencySeriesSerializer = _series(
    "Latency",
    {
        "bucket": serializers.DateTimeField(),
        "destination_id": serializers.CharField(required=False),
        "count": serializers.IntegerField(),
        "p50_ms": serializers.IntegerField(allow_null=True),
        "p95_ms": serializers.IntegerField(allow_null=True),
        "p99_ms": serializers.IntegerField(allow_null=True),
    },
)


class OverviewSerializer(serializers.Serializer):
    events_today = serializers.IntegerField()
    events_this_week = serializers.IntegerField()
    active_sources = serializers.IntegerField()
    deliveries_today = serializers.IntegerField(help_text="Delivery attempts today.")
    success_today = serializers.IntegerField()
    failed_today = serializers.IntegerField()
    success_rate_today = serializers.FloatField(
        allow_null=True, help_text="Percent of today's attempts that succeeded."
    )
    dlq_count = serializers.IntegerField(help_text="Dead letters waiting (counted up to 10,000).")
    active_destinations = serializers.IntegerField()
    open_issues = serializers.IntegerField()
    open_circuits = serializers.IntegerField()
    since = serializers.DateTimeField(help_text="Start of today (UTC).")
    latency_ms = serializers.DictField(
        help_text="p50 / p95 of today's attempts, from the rollups' histogram (interpolated within a bucket)."
    )
    # This project's earlier field names, kept for existing clients.
    events = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="A fraction (0.75), unlike success_rate_today.")
    dead_letters = serializers.IntegerField(help_text="Dead letters created today.")
