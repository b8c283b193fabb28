"""The public base URL of this service, for the ingest and publish URLs shown to users.

``HOOKSTREAM_PUBLIC_URL`` when it is set; otherwise the scheme and host the request came in
on, so the URLs work on whatever port the service runs. Behind a reverse proxy the scheme
and host it received come from ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` — only when
they are named in ``HOOKSTREAM_TRUSTED_PROXY_HEADERS`` (a client could send them too), the
right-most value being the one the proxy added.
"""

from __future__ import annotations

from django.conf import settings
from django.http.request import split_domain_port, validate_host

_SCHEMES = {"http", "https"}


def _trusted(request, header: str) -> str:
    trusted = {name.lower() for name in settings.HOOKSTREAM_TRUSTED_PROXY_HEADERS}
    if header.lower() not in trusted:
        return ""
    raw = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    return raw.split(",")[-1].strip()


def public_base_url(request=None) -> str:
    """``https://host[:port]`` without a trailing slash; "" when neither the setting nor a
    request says (the caller then shows a path)."""
    if settings.HOOKSTREAM_PUBLIC_URL:
        return settings.HOOKSTREAM_PUBLIC_URL
    if request is None:
        return ""
    request = getattr(request, "_request", request)  # a DRF Request wraps Django's
    scheme = _trusted(request, "X-Forwarded-Proto").lower()
    if scheme not in _SCHEMES:
        scheme = request.scheme
    host = _trusted(request, "X-Forwarded-Host")
    if not host or not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
        host = request.get_host()
    return f"{scheme}://{host}"


def public_url(request, path: str) -> str:
    """``path`` (starting with ``/``) on the public base URL."""
    return public_base_url(request) + path
