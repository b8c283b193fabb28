"""Template context for the console layout: the selected organization and the switcher."""

from django.conf import settings
from django.http.request import split_domain_port

from hookstream.selectors import memberships_of


def stream_url(request) -> str:
    """Where this page's browser opens the live stream: the configured public URL, else this
    host on the stream process's port."""
    if settings.HOOKSTREAM_STREAM_URL:
        return settings.HOOKSTREAM_STREAM_URL
    host, _port = split_domain_port(request.get_host())
    if ":" in host:
        host = f"[{host}]"
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{host}:{settings.HOOKSTREAM_STREAM_PORT}/v1/ws"


def console(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: the query runs only on pages that render the switcher.
    return {
        "current_organization": getattr(request, "organization", None),
        "memberships": memberships_of(user=user),
        "stream_url": stream_url(request),
    }
