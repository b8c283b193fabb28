"""The SSRF guard: outbound deliveries may not reach private infrastructure.

Private, loopback, link-local, multicast, reserved, unspecified, metadata and IPv4-mapped
IPv6 addresses are refused unless ``HOOKSTREAM_ALLOW_PRIVATE_NETWORKS`` is on. The engine
checks the address it actually connects to; destination create/update checks literal hosts.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# Cloud metadata endpoints that are not covered by the link-local range.
METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


def address_error(address: str) -> str | None:
    """Why ``address`` may not be connected to, or None when it may."""
    if settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"{address} is an IPv4-mapped IPv6 address; refused by the SSRF guard"
    if ip in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address; refused by the SSRF guard"
    for attribute, label in (
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_private", "a private"),
        ("is_multicast", "a multicast"),
        ("is_reserved", "a reserved"),
        ("is_unspecified", "an unspecified"),
    ):
        if getattr(ip, attribute):
            return f"{address} is {label} address; refused by the SSRF guard"
    return None


def literal_address_error(url: str) -> str | None:
    """For a URL whose host is a literal IP address (or localhost), why it is refused."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return "not a valid URL"
    if not host:
        return None
    if host.lower() in {"localhost", "localhost.localdomain"} or host.lower().endswith(".localhost"):
        return address_error("127.0.0.1")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None  # a name: checked on the resolved address at connect time
    return address_error(host)


class SSRFRefused(Exception):
    """The target of an outbound request is refused by the SSRF guard (a permanent failure)."""


def resolve_and_check(host: str, port: int) -> str:
    """Resolve ``host`` once and return the address to connect to, or raise SSRFRefused.

    The caller connects to exactly this address (see ``hookstream.outbound``), so the
    answer checked here is the answer used: a name cannot resolve to a public address for
    the check and to a private one for the connection (DNS rebinding).
    Every address the name resolves to must pass; a name that mixes public and private
    answers is refused as a whole.
    """
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"cannot resolve {host!r}: {exc}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if str(sockaddr[0]) not in addresses:
            addresses.append(str(sockaddr[0]))
    if not addresses:
        raise OSError(f"{host!r} resolved to no address")
    for address in addresses:
        error = address_error(address)
        if error:
            if address != bare:
                error = f"{host} resolves to {error}"
            raise SSRFRefused(error)
    return addresses[0]
