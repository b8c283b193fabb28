"""Reads of tenancy: a user's memberships and an organization's API keys."""

from django.db.models import QuerySet
from django.http import Http404

from hookstream.models import APIKey, Membership


def memberships_of(*, user) -> QuerySet[Membership]:
    """The user's memberships with their organization, by organization name."""
    return Membership.objects.select_related("organization").filter(user=user).order_by("organization__name")


def api_keys_for_organization(*, organization) -> QuerySet[APIKey]:
    """The organization's keys, revoked ones too; the hash is never loaded."""
    return APIKey.objects.filter(organization=organization).defer("key_hash")


def api_key_get(*, organization, key_id: str) -> APIKey:
    """One key of ``organization``; 404 for anything else (another organization's id too)."""
    key = APIKey.objects.filter(organization=organization, pk=key_id).first()
    if key is None:
        raise Http404("No such API key.")
    return key
