"""Serializers of the monitoring API (spec §8): issues, alert rules, notification channels."""

from __future__ import annotations

from rest_framework import serializers

from monitoring.models import Issue, IssueStatus


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
