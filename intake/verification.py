"""Checks on an ingest request before anything is stored: signature, client address, IP lists.

Pure functions of the request's parts and the source's settings, so the ingest view stays
a short list of steps and each check is tested on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Mapping

from standardwebhooks import Webhook

# client_ip moved to hookstream (the login throttle needs it too); re-exported for intake.
from hookstream.clientip import client_ip as client_ip
from intake.models import VerificationType

DEFAULT_SIGNATURE_HEADERS = {
    VerificationType.HMAC_SHA256: "X-Hub-Signature-256",
    VerificationType.HMAC_SHA1: "X-Hub-Signature",
}
_DIGESTS = {VerificationType.HMAC_SHA256: hashlib.sha256, VerificationType.HMAC_SHA1: hashlib.sha1}


class VerificationFailed(Exception):
    """The request's signature is missing or wrong (the message says which, for logs)."""


def signature_header_for(source) -> str:
    return source.verification_header or DEFAULT_SIGNATURE_HEADERS.get(source.verification_type, "")


def signature_verify(*, source, secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise ``VerificationFailed`` unless ``body`` carries a valid signature for ``source``.

    ``headers`` must be case-insensitive (Django's ``request.headers``).
    """
    kind = source.verification_type
    if not kind:
        return
    if kind == VerificationType.STANDARD_WEBHOOKS:
        _standard_webhooks_verify(secret, body, headers)
        return
    header = signature_header_for(source)
    given = (headers.get(header) or "").strip()
    if not given:
        raise VerificationFailed(f"missing {header} header")
    prefix = source.verification_prefix
    if prefix:
        if not given.startswith(prefix):
            raise VerificationFailed(f"signature does not start with {prefix!r}")
        given = given[len(prefix) :]
    expected = hmac.new(secret.encode(), body, _DIGESTS[kind]).digest()
    if not _digest_matches(expected, given.strip()):
        raise VerificationFailed("signature does not match")


def _digest_matches(expected: bytes, given: str) -> bool:
    """Senders encode the digest in hex (GitHub, most) or base64 (Shopify); accept both."""
    if hmac.compare_digest(expected.hex(), given.lower()):
        return True
    try:
        decoded = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected, decoded)


def _standard_webhooks_verify(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    wanted = {name: headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        # The library checks the ±5 minute timestamp tolerance and every listed v1 signature.
        Webhook(secret).verify(body, wanted, json_parse=False)
    except Exception as exc:  # WebhookVerificationError, and ValueError/binascii.Error on garbled headers
        raise VerificationFailed(f"standard webhooks: {exc}") from None


def standard_webhooks_secret_error(secret: str) -> str | None:
    """Why ``secret`` is not a Standard Webhooks secret (``whsec_`` + base64), or None."""
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        if not base64.b64decode(raw + "==", validate=False):
            return "the secret is empty"
        base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "a standard_webhooks secret is whsec_ followed by base64"
    return None


# --- client address and IP lists ---------------------------------------------------------


def parse_networks(entries: Iterable[str]) -> list:
    """IPs and CIDRs as networks; raises ValueError naming the first bad entry."""
    networks = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"{entry!r} is not a string")
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
        networks.append(_unmapped(network))
    return networks


def _unmapped(network):
    """``::ffff:10.0.0.1`` (``/128``) as ``10.0.0.1/32``, ``::ffff:10.0.0.0/104`` as ``10.0.0.0/8``.

    Client addresses are compared as IPv4 (``hookstream.clientip`` unwraps mapped ones), so a list
    entry written in the IPv4-mapped form must be too, or it would never match.
    """
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is None or network.prefixlen < 96:
        return network
    return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")


def ip_allowed(ip: str | None, allowlist: list[str], denylist: list[str]) -> bool:
    """False when ``ip`` is on the deny list, or an allow list exists and ``ip`` is not on it."""
    if not allowlist and not denylist:
        return True
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)

    def _on(entries):
        return any(address in network for network in parse_networks(entries) if network.version == address.version)

    if denylist and _on(denylist):
        return False
    if allowlist and not _on(allowlist):
        return False
    return True
