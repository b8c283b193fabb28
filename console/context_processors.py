"""Template context for the console layout: the selected organization and the switcher."""

from hookstream.selectors import memberships_of


def console(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: the query runs only on pages that render the switcher.
    return {
        "current_organization": getattr(request, "organization", None),
        "memberships": memberships_of(user=user),
    }
