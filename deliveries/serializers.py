"""Output (and small input) serializers of the delivery API (spec §6), and the event detail
(an event with its deliveries and attempts)."""

import base64

from rest_framework import serializers

from deliveries.models import DeadLetter, DeliveryAttempt, ReplayJob
from intake.serializers import EventSerializer


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    """One attempt as every endpoint shows it (the event detail embeds a list of these)."""

    class Meta:
        model = DeliveryAttempt
        fields = [
            "id",
            "event_id",
            "destination_id",
            "connection_id",
            "delivery_id",
            "attempt_number",
            "status",
            "request_url",
            "request_method",
            "request_headers",
            "request_body_size",
            "response_status",
            "response_headers",
            "response_body",
            "duration_ms",
            "error",
            "next_retry_at",
            "is_dlq",
            "dlq_at",
            "trigger_type",
            "created_at",
        ]
        read_only_fields = fields


class DeadLetterSerializer(serializers.ModelSerializer):
    delivery_status = serializers.CharField(source="delivery.status", read_only=True)
    attempt_count = serializers.IntegerField(source="delivery.attempt_count", read_only=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "delivery_id",
            "event_id",
            "destination_id",
            "reason",
            "last_error",
            "delivery_status",
            "attempt_count",
            "created_at",
        ]
        read_only_fields = fields


class ReplayJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReplayJob
        fields = [
            "id",
            "kind",
            "status",
            "destination_id",
            "source_id",
            "range_from",
            "range_to",
            "rate_limit",
            "max_events",
            "total",
            "processed",
            "succeeded",
            "failed",
            "error",
            "started_at",
            "completed_at",
            "created_at",
        ]
        read_only_fields = fields


class ReplayCreateSerializer(serializers.Serializer):
    """``{destination_id, source_id?, from, to, rate_limit, max_events}``."""

    def get_fields(self):
        # "from" is a Python keyword, so the fields are declared here rather than as attributes.
        return {
            "destination_id": serializers.CharField(),
            "source_id": serializers.CharField(required=False, allow_null=True, allow_blank=True),
            "from": serializers.DateTimeField(),
            "to": serializers.DateTimeField(),
            "rate_limit": serializers.IntegerField(min_value=1, max_value=100, default=10),
            "max_events": serializers.IntegerField(min_value=1, max_value=10000, default=1000),
        }

    def validate(self, attrs):
        if attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": ["Must not be after 'to'."]})
        return attrs


class DeadLetterRetrySerializer(serializers.Serializer):
    """``{from?, to?}``: the dead letters created in that range (all when absent)."""

    def get_fields(self):
        return {
            "from": serializers.DateTimeField(required=False, allow_null=True),
            "to": serializers.DateTimeField(required=False, allow_null=True),
        }

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        if start and end and start > end:
            raise serializers.ValidationError({"from": ["Must not be after 'to'."]})
        return attrs


# --- the event detail ---------------------------------------------------------------------


class EventDeliverySerializer(serializers.Serializer):
    id = serializers.CharField()
    destination_id = serializers.CharField()
    connection_id = serializers.CharField(allow_null=True)
    subscription_id = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    attempt_count = serializers.IntegerField()
    last_error = serializers.CharField()
    transformed_payload = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class EventDetailSerializer(EventSerializer):
    body = serializers.SerializerMethodField(help_text="The body as text when it is UTF-8, else base64.")
    body_encoding = serializers.SerializerMethodField(help_text="utf-8 or base64.")
    deliveries = EventDeliverySerializer(source="delivery_list", many=True, read_only=True)
    delivery_attempts = DeliveryAttemptSerializer(source="attempt_list", many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [
            *EventSerializer.Meta.fields,
            "headers",
            "query",
            "body",
            "body_encoding",
            "payload",
            "schema_errors",
            "deliveries",
            "delivery_attempts",
        ]
        read_only_fields = fields

    def _text(self, event) -> str | None:
        try:
            return bytes(event.body).decode("utf-8")
        except UnicodeDecodeError:
            return None

    def get_body(self, event) -> str:
        text = self._text(event)
        return text if text is not None else base64.b64encode(bytes(event.body)).decode()

    def get_body_encoding(self, event) -> str:
        return "utf-8" if self._text(event) is not None else "base64"
