"""Rows of the selected organization, looked up before anything else about the request."""

from django.shortcuts import get_object_or_404


def owned(queryset, organization, pk):
    """The row ``pk`` of ``organization``; 404 for any other (another organization's id too)."""
    return get_object_or_404(queryset.filter(organization=organization), pk=pk)


class LookupFirstMixin:
    """A method the page does not allow answers 404 for a row outside the organization and
    405 only for the organization's own rows: another organization's id is a 404 whatever
    the method, and says nothing about the page."""

    def lookup(self):
        raise NotImplementedError

    def http_method_not_allowed(self, request, *args, **kwargs):
        self.lookup()
        return super().http_method_not_allowed(request, *args, **kwargs)
