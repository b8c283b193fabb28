"""Serializers shared by the API (strict JSON fields, the error body, ``{"success": true}``)
and those of API keys."""

from rest_framework import serializers

from hookstream.models import APIKey


class StrictIntegerField(serializers.IntegerField):
    """An integer given as a JSON number: no strings, no booleans, no fractions."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        if isinstance(data, float):
            if not data.is_integer():
                self.fail("invalid")
            data = int(data)
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number: no strings, no booleans."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false``; not ``"yes"``, ``1`` or ``"on"``."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictCharField(serializers.CharField):
    """A JSON string: DRF's CharField would turn ``12`` or ``true`` into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (spec §2)."""

    error = serializers.CharField(help_text="A human-readable message.")
    status = serializers.IntegerField(help_text="The HTTP status code, repeated.")
    request_id = serializers.CharField(help_text="The request's id, also in the X-Request-Id header.")
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: field → messages.",
    )


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class APIKeySerializer(serializers.ModelSerializer):
    """An API key as listed: never the key or its hash."""

    revoked = serializers.BooleanField(read_only=True)

    class Meta:
        model = APIKey
        fields = ["id", "name", "key_prefix", "created_at", "last_used_at", "request_count", "revoked", "revoked_at"]
        read_only_fields = fields


class APIKeyCreatedSerializer(APIKeySerializer):
    """A new key: the only response that ever carries the key itself."""

    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(APIKeySerializer.Meta):
        fields = ["key", *APIKeySerializer.Meta.fields]
        read_only_fields = fields


class APIKeyCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, trim_whitespace=True)
