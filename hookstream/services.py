"""Writes for tenancy: organizations, memberships and API keys."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from hookstream.models import APIKey, Membership, Organization, generate_raw_key, hash_key


def organization_create(*, name: str, slug: str | None = None, owner=None) -> Organization:
    with transaction.atomic():
        org = Organization.objects.create(name=name, slug=slug or slugify(name)[:100] or "org")
        if owner is not None:
            Membership.objects.create(user=owner, organization=org, role=Membership.Role.OWNER)
    return org


def api_key_create(*, organization: Organization, name: str, created_by=None) -> tuple[APIKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again."""
    raw = generate_raw_key()
    key = APIKey.objects.create(
        organization=organization,
        name=name,
        key_prefix=raw[:12],
        key_hash=hash_key(raw),
        created_by=created_by,
    )
    return key, raw


def api_key_revoke(*, key: APIKey) -> APIKey:
    APIKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key


def user_create(*, username: str, password: str, email: str = "", organization: Organization | None = None):
    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    if organization is not None:
        Membership.objects.create(user=user, organization=organization, role=Membership.Role.OWNER)
    return user
