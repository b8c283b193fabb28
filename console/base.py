"""What every console page shares: login, the selected organization, the row lookup, ``next``.

The console is the session-cookie web UI. Views are thin: reads go through the selectors and
writes through the services of each app, exactly as the REST API does, so both interfaces
enforce the same rules. Every view resolves ``request.organization`` from the session (the
organization switcher writes it) and only ever looks rows up inside that organization.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from hookstream.api.authentication import session_organization


class ConsoleMixin(LoginRequiredMixin):
    """Logged-in user with a selected organization, available as ``self.organization``."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.organization = session_organization(request)
        if self.organization is None:
            return render(request, "console/no_organization.html", status=403)
        request.organization = self.organization
        return super().dispatch(request, *args, **kwargs)


class LookupFirstMixin:
    """A method the page does not allow answers 404 for a row outside the organization and
    405 only for the organization's own rows: another organization's id is a 404 whatever
    the method, and says nothing about the page.

    ``lookup()`` returns the page's row through a selector (404 outside the organization);
    pages about no row return None.
    """

    def lookup(self):
        return None

    def http_method_not_allowed(self, request, *args, **kwargs):
        self.lookup()
        return super().http_method_not_allowed(request, *args, **kwargs)


def safe_next(request, fallback: str) -> str:
    """The ``next`` parameter when it points back into this site, otherwise ``fallback``."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback
