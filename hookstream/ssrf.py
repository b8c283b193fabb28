"""The egress policy: which addresses outbound deliveries may connect to.

An address is allowed only when it is globally routable (``is_global``, and neither multicast,
reserved nor unspecified). Addresses that carry an IPv4 address inside an IPv6 one are
unwrapped first and the embedded address must pass too: IPv4-mapped (``::ffff:a.b.c.d``),
6to4 (``2002::/16``), Teredo (``2001::/32``) and NAT64 (``64:ff9b::/96``). So loopback,
private (RFC 1918, ``fc00::/7``), shared (``100.64.0.0/10``), link-local and the like are
refused.

Two settings widen it:

* ``HOOKSTREAM_EGRESS_ALLOW`` — CIDRs and host names an operator lets deliveries reach even
  though they are internal (``10.1.2.0/24``, ``hooks.internal``, ``.corp.example`` for every
  name under it).
* ``HOOKSTREAM_ALLOW_PRIVATE_NETWORKS`` — switches the address rule off (development).

Cloud metadata names and addresses are refused whatever the settings say.

The connection code (``hookstream.outbound``) checks the address it actually connects to
(:func:`resolve_and_check`); destination validation refuses literal hosts early
(:func:`literal_address_error`).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata services: credentials live there. Refused even when private
# networks are allowed or the operator's allow-list would match.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "169.254.169.123",  # AWS time sync
        "168.63.129.16",  # Azure wire server
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",  # AWS VPC DNS over IPv6
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


class SSRFRefused(Exception):
    """The target of an outbound request is refused by the SSRF guard (a permanent failure)."""


def _embedded(ip: IPAddress) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, with the name of the wrapping."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.ipv4_mapped is not None:
        found.append(("an IPv4-mapped IPv6 address of", ip.ipv4_mapped))
    if ip.sixtofour is not None:
        found.append(("a 6to4 address of", ip.sixtofour))
    if ip.teredo is not None:
        found.append(("a Teredo address of", ip.teredo[1]))
    if ip in _NAT64:
        found.append(("a NAT64 address of", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return found


def _kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` unreachable under the policy ("a loopback"…), or None if global."""
    for attribute, label in (
        ("is_unspecified", "an unspecified"),
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_reserved", "a reserved"),
        ("is_private", "a private"),
    ):
        if getattr(ip, attribute):
            return label
    if not ip.is_global:
        if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
            return "a shared (carrier-grade NAT)"
        return "a non-global"
    return None


@lru_cache(maxsize=16)
def _parse_allow(entries: tuple[str, ...]) -> tuple[tuple[IPNetwork, ...], tuple[str, ...]]:
    networks: list[IPNetwork] = []
    names: list[str] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.append(normalize_host(entry))
    return tuple(networks), tuple(names)


def normalize_host(host: str) -> str:
    """A host name as the policy compares it: lower case, no brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def is_metadata_name(host: str) -> bool:
    return normalize_host(host) in METADATA_NAMES


def _allow_listed(ip: IPAddress, host: str | None) -> bool:
    networks, names = _parse_allow(tuple(getattr(settings, "HOOKSTREAM_EGRESS_ALLOW", ()) or ()))
    if any(ip.version == network.version and ip in network for network in networks):
        return True
    if host:
        name = normalize_host(host)
        return any(name == entry or (entry.startswith(".") and name.endswith(entry)) for entry in names)
    return False


def address_error(address: str, *, host: str | None = None) -> str | None:
    """Why ``address`` (reached as ``host``, when it came from a name) may not be connected
    to, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    embedded = _embedded(ip)
    for candidate in (ip, *(inner for _, inner in embedded)):
        if candidate in METADATA_ADDRESSES:
            kind = _kind(candidate)
            detail = f" ({kind.split(' ', 1)[1]})" if kind else ""
            return f"{address} is a cloud metadata address{detail}; refused by the SSRF guard"
    if _allow_listed(ip, host) or settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS:
        return None
    for wrapping, inner in embedded:
        kind = _kind(inner)
        if kind is not None:
            return f"{address} is {wrapping} {inner}, {kind} address; refused by the SSRF guard"
    kind = _kind(ip)
    if kind is not None:
        return f"{address} is {kind} address; refused by the SSRF guard"
    return None


def _literal_ip(host: str) -> str | None:
    """``host`` as an IP address string when it is one (including the legacy IPv4 spellings
    ``127.1``, ``2130706433``, ``0x7f.0.0.1`` that resolvers accept), else None."""
    bare = host.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefxABCDEFX." for c in bare) and bare[0].isdigit():
        try:
            return socket.inet_ntoa(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def host_error(host: str) -> str | None:
    """For a literal host (an IP address, ``localhost``, a metadata name), why it is refused.
    Other names are checked on their resolved addresses at connect time."""
    name = normalize_host(host)
    if not name:
        return None
    if name in METADATA_NAMES:
        return f"{name} is a cloud metadata host; refused by the SSRF guard"
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return address_error("127.0.0.1", host=name)
    literal = _literal_ip(name)
    if literal is None:
        return None
    return address_error(literal, host=name)


def literal_address_error(url: str) -> str | None:
    """For a URL whose host is a literal IP address, localhost or a metadata name, why it
    is refused."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return "not a valid URL"
    if not host:
        return None
    return host_error(host)


def resolve_and_check(host: str, port: int) -> str:
    """Resolve ``host`` once and return the address to connect to, or raise SSRFRefused.

    The caller connects to exactly this address (see ``hookstream.outbound``), so the
    answer checked here is the answer used: a name cannot resolve to a public address for
    the check and to a private one for the connection (DNS rebinding).
    Every address the name resolves to must pass; a name that mixes public and private
    answers is refused as a whole.
    """
    bare = host.strip("[]")
    if is_metadata_name(bare):
        raise SSRFRefused(f"{normalize_host(bare)} is a cloud metadata host; refused by the SSRF guard")
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
        error = address_error(address, host=bare)
        if error:
            if address != bare:
                error = f"{host} resolves to {error}"
            raise SSRFRefused(error)
    return addresses[0]
