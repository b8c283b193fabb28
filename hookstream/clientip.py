"""The client address of a request, from the socket peer or a trusted proxy header.

Used by ingest (rate limit, IP lists) and by the login throttle.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping


def client_ip(meta: Mapping[str, str], trusted_headers: Iterable[str]) -> str | None:
    """The client's address: the first trusted proxy header present, else REMOTE_ADDR.

    For a list-valued header (``X-Forwarded-For: client, proxy1, proxy2``) the right-most
    valid address is taken: it is the one the trusted proxy itself appended, whereas the
    left-most entries are whatever the client chose to send.
    """
    for header in trusted_headers:
        raw = meta.get("HTTP_" + header.upper().replace("-", "_"))
        if not raw:
            continue
        for candidate in reversed(raw.split(",")):
            address = parse_ip(candidate)
            if address:
                return address
    return parse_ip(meta.get("REMOTE_ADDR", ""))


def parse_ip(text: str) -> str | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4-mapped IPv6 address (::ffff:1.2.3.4, from a dual-stack socket) is that IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)
