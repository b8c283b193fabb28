"""API authentication: API keys (``X-API-Key`` or ``Authorization: Bearer``) and sessions.

Either way the caller's organization ends up on ``request.organization``.
"""

from django.db import connection
from django.db.models import F
from django.utils import timezone
from rest_framework import authentication, exceptions

from hookstream.models import API_KEY_PREFIX, APIKey, Membership, hash_key

SESSION_ORG_KEY = "organization_id"


def _raw_key_from(request) -> str | None:
    raw = request.META.get("HTTP_X_API_KEY")
    if raw:
        return raw.strip()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def _key_count_use(key: APIKey) -> None:
    """Stamp ``last_used_at`` and count the request on the key.

    On PostgreSQL the statement is committed asynchronously (no wait for the WAL flush):
    every request of a key updates the same row, and a synchronous commit per request would
    add a disk flush to every API call and let requests of one key update it one at a time.
    A database crash can lose the last fraction of a second of these statistics, nothing else.
    """
    now = timezone.now()
    if connection.vendor != "postgresql":
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now, request_count=F("request_count") + 1)
        return
    with connection.cursor() as cursor:
        # One round trip: SET LOCAL applies to the implicit transaction of this query string.
        cursor.execute(
            f"UPDATE {APIKey._meta.db_table} SET last_used_at = %s, request_count = request_count + 1 "
            "WHERE id = %s; SET LOCAL synchronous_commit TO OFF",
            [now, key.pk],
        )


class APIKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = _raw_key_from(request)
        if raw is None:
            return None
        if not raw.startswith(API_KEY_PREFIX):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = APIKey.objects.select_related("organization").filter(key_hash=hash_key(raw)).first()
        if key is None or key.revoked:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        _key_count_use(key)
        request._request.organization = key.organization
        return (None, key)

    def authenticate_header(self, request):
        return "Bearer"


def session_organization(request):
    """The organization selected in the session, falling back to the user's first one."""
    user = request.user
    if not user or not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("organization").filter(user=user)
    selected = request.session.get(SESSION_ORG_KEY)
    if selected:
        membership = memberships.filter(organization_id=selected).first()
        if membership:
            return membership.organization
    membership = memberships.order_by("created_at", "id").first()
    if membership:
        request.session[SESSION_ORG_KEY] = membership.organization_id
        return membership.organization
    return None


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Django session cookie; CSRF is enforced on unsafe methods (DRF's default)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        org = session_organization(request._request)
        request._request.organization = org
        return result
