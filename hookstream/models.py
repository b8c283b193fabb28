"""Tenancy: organizations, who belongs to them, and their API keys."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from hookstream.ids import id_factory

API_KEY_PREFIX = "hs_live_"


class Organization(models.Model):
    """A tenant. Every resource belongs to exactly one organization."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("org"), editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's membership of an organization."""

    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization}"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_raw_key() -> str:
    return API_KEY_PREFIX + secrets.token_hex(32)


class APIKey(models.Model):
    """An organization's API key. Only the SHA-256 of the key is stored; it is shown once."""

    id = models.CharField(primary_key=True, max_length=40, default=id_factory("ak"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    key_prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    request_count = models.BigIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        indexes = [
            # The key list of an organization, newest first (cursor pagination).
            models.Index(fields=["organization", "-created_at", "-id"], name="apikey_org_created"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class StreamFrame(models.Model):
    """A frame of the live stream, on its way from the process that made it to the stream processes.

    Only used without Redis (the embedded setup): stream processes poll new rows by id. Rows
    are kept for a few minutes, long enough for every stream process to have read them.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    message = models.TextField()
