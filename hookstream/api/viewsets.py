"""The base viewsets every API resource uses: scoped to the caller's organization."""

from rest_framework import mixins, routers, viewsets


class OrganizationScopedMixin:
    """Every queryset is filtered to ``request.organization``; another organization's id
    therefore answers 404. ``perform_create`` stamps the organization."""

    def get_organization(self):
        return self.request._request.organization

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular inspects the view without a request or an organization.
            return super().get_queryset().none()
        return super().get_queryset().filter(organization=self.get_organization())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["organization"] = getattr(self.request._request, "organization", None)
        return context


class OrganizationScopedViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


class OrganizationScopedReadOnlyViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    pass


class OptionalSlashRouter(routers.SimpleRouter):
    """Routes that answer with and without a trailing slash (``/v1/destinations`` and
    ``/v1/destinations/``), so no client is redirected (a redirected POST loses its body)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trailing_slash = "/?"


__all__ = [
    "OptionalSlashRouter",
    "OrganizationScopedViewSet",
    "OrganizationScopedReadOnlyViewSet",
    "OrganizationScopedMixin",
    "mixins",
]
