from rest_framework import permissions


class HasOrganization(permissions.BasePermission):
    """Authenticated by key or session, with an organization to act in."""

    message = "Authentication credentials were not provided."

    def has_permission(self, request, view):
        return getattr(request._request, "organization", None) is not None and (
            request.auth is not None or (request.user and request.user.is_authenticated)
        )


class SessionOnly(permissions.BasePermission):
    """For endpoints that an API key may not use (e.g. minting API keys)."""

    message = "This endpoint needs a signed-in session; an API key cannot use it."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.auth is None)
