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
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from standardwebhooks import Webhook

# client_ip moved to hookstream (the login throttle needs it too); re-exported for intake.
from hookstream.clientip import client_ip as client_ip
from intake.models import VerificationType

DEFAULT_SIGNATURE_HEADERS = {
    VerificationType.HMAC_SHA256: "X-Hub-Signature-256",
    VerificationType.HMAC_SHA1: "X-Hub-Signature",
    VerificationType.STRIPE: "Stripe-Signature",
    VerificationType.SLACK: "X-Slack-Signature",
    VerificationType.TWILIO: "X-Twilio-Signature",
    VerificationType.PADDLE: "Paddle-Signature",
    VerificationType.SENDGRID: "X-Twilio-Email-Event-Webhook-Signature",
    VerificationType.BASIC_AUTH: "Authorization",
    VerificationType.STANDARD_WEBHOOKS: "webhook-signature",
}
_DIGESTS = {VerificationType.HMAC_SHA256: hashlib.sha256, VerificationType.HMAC_SHA1: hashlib.sha1}
# Senders put a scheme name before the digest (GitHub ``sha256=``, Intercom ``sha1=``, Slack
# ``v0=``, Typeform ``sha256=``); it is stripped whatever the source's verification_prefix.
_KNOWN_PREFIX_RE = re.compile(r"^(?:sha256|sha1|sha512|v0|v1)=", re.IGNORECASE)
# How far a signed timestamp may be from now, either way (Stripe's, Slack's and Standard
# Webhooks' own default).
TIMESTAMP_TOLERANCE_SECONDS = 300

# The messages of ``VerificationFailed``, answered in the 401 body.
HEADER_MISSING = "the {header} header is missing"
SIGNATURE_MISMATCH = "the signature does not match"
TIMESTAMP_OUTSIDE = f"the timestamp is outside the tolerance of {TIMESTAMP_TOLERANCE_SECONDS} seconds"


class VerificationFailed(Exception):
    """The request's signature is missing or wrong; the message says why, for the sender."""


def signature_header_for(source) -> str:
    return source.verification_header or DEFAULT_SIGNATURE_HEADERS.get(source.verification_type, "")


@dataclass(frozen=True)
class Signed:
    """What a signature may cover: the raw body, the headers (case-insensitive, Django's
    ``request.headers``), the URL the sender posted to (Twilio) and the content type."""

    body: bytes
    headers: Mapping[str, str]
    url: str = ""
    content_type: str = ""
    now: float = 0.0

    def header(self, name: str) -> str:
        value = (self.headers.get(name) or "").strip()
        if not value:
            raise VerificationFailed(HEADER_MISSING.format(header=name))
        return value


def signature_verify(
    *,
    source,
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    url: str = "",
    content_type: str = "",
    now: float | None = None,
) -> None:
    """Raise ``VerificationFailed`` unless the request carries a valid signature for ``source``.

    ``headers`` must be case-insensitive (Django's ``request.headers``); ``url`` is the
    public URL the sender used, with its query (only Twilio signs it).
    """
    kind = source.verification_type
    if not kind:
        return
    signed = Signed(body, headers, url, content_type, time.time() if now is None else now)
    header = signature_header_for(source)
    if kind in _DIGESTS:
        _hmac_verify(_DIGESTS[kind], secret, signed.header(header), body, source.verification_prefix)
    else:
        _VERIFIERS[kind](secret, signed, header)


def _strip_prefix(given: str, prefix: str = "") -> str:
    if prefix and given.startswith(prefix):
        return given[len(prefix) :].strip()
    return _KNOWN_PREFIX_RE.sub("", given, count=1).strip()


def _hmac_verify(digest, secret: str, given: str, body: bytes, prefix: str = "") -> None:
    expected = hmac.new(secret.encode(), body, digest).digest()
    if not _digest_matches(expected, _strip_prefix(given, prefix)):
        raise VerificationFailed(SIGNATURE_MISMATCH)


def _digest_matches(expected: bytes, given: str) -> bool:
    """Senders encode the digest in hex (GitHub, most) or base64 (Shopify); accept both."""
    if hmac.compare_digest(expected.hex(), given.lower()):
        return True
    try:
        decoded = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected, decoded)


def _check_timestamp(raw: str, now: float, *, milliseconds: bool = False) -> None:
    try:
        stamp = float(raw) / (1000 if milliseconds else 1)
    except ValueError:
        raise VerificationFailed(f"the timestamp {raw[:40]!r} is not a Unix time") from None
    if abs(now - stamp) > TIMESTAMP_TOLERANCE_SECONDS:
        raise VerificationFailed(TIMESTAMP_OUTSIDE)


def _pairs(header: str, separator: str) -> list[tuple[str, str]]:
    """``t=1,v1=a,v1=b`` → ``[("t", "1"), ("v1", "a"), ("v1", "b")]``."""
    pairs = []
    for item in header.split(separator):
        name, _, value = item.strip().partition("=")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _hex_hmac_any(secret: str, message: bytes, candidates: list[str]) -> bool:
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate.lower()) for candidate in candidates)


def _stripe_verify(secret: str, signed: Signed, header: str) -> None:
    """``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]``: HMAC-SHA256 of ``{t}.{body}``.

    Several ``v1`` values appear while a secret is being rolled; any one may match.
    """
    pairs = _pairs(signed.header(header), ",")
    stamps = [value for name, value in pairs if name == "t"]
    candidates = [value for name, value in pairs if name == "v1"]
    if not stamps or not candidates:
        raise VerificationFailed(f"the {header} header has no t= timestamp or no v1= signature")
    _check_timestamp(stamps[0], signed.now)
    if not _hex_hmac_any(secret, stamps[0].encode() + b"." + signed.body, candidates):
        raise VerificationFailed(SIGNATURE_MISMATCH)


def _slack_verify(secret: str, signed: Signed, header: str) -> None:
    """``X-Slack-Signature: v0=<hex>``: HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{body}``."""
    given = signed.header(header)
    stamp = signed.header("X-Slack-Request-Timestamp")
    _check_timestamp(stamp, signed.now)
    if not _hex_hmac_any(secret, b"v0:" + stamp.encode() + b":" + signed.body, [_strip_prefix(given)]):
        raise VerificationFailed(SIGNATURE_MISMATCH)


def _paddle_verify(secret: str, signed: Signed, header: str) -> None:
    """``Paddle-Signature: ts=<unix>;h1=<hex>[;h1=…]``: HMAC-SHA256 of ``{ts}:{body}``."""
    pairs = _pairs(signed.header(header), ";")
    stamps = [value for name, value in pairs if name == "ts"]
    candidates = [value for name, value in pairs if name == "h1"]
    if not stamps or not candidates:
        raise VerificationFailed(f"the {header} header has no ts= timestamp or no h1= signature")
    _check_timestamp(stamps[0], signed.now)
    if not _hex_hmac_any(secret, stamps[0].encode() + b":" + signed.body, candidates):
        raise VerificationFailed(SIGNATURE_MISMATCH)


def _twilio_urls(url: str) -> list[str]:
    """The URL as signed, with and without its default port: Twilio signs the URL it was
    given, and which form that was is the user's (Twilio's own validator tries both)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    bare = urlunsplit(parts._replace(netloc=host))
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return list(dict.fromkeys([url, bare if parts.port in (None, default) else url, with_port]))


def _twilio_verify(secret: str, signed: Signed, header: str) -> None:
    """``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL followed by the form parameters
    sorted by name, each as name + value. A JSON body is signed through the URL instead: its
    ``bodySHA256`` query parameter must be the SHA-256 of the body."""
    given = signed.header(header)
    if not signed.url:
        raise VerificationFailed("the public URL of this source is unknown")
    kind = signed.content_type.split(";", 1)[0].strip().lower()
    material = ""
    if kind == "application/x-www-form-urlencoded":
        try:
            params = parse_qsl(signed.body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise VerificationFailed("the form body is not UTF-8") from None
        material = "".join(name + value for name, value in sorted(params, key=lambda pair: pair[0]))
    else:
        body_hash = dict(parse_qsl(urlsplit(signed.url).query)).get("bodySHA256")
        if body_hash is None and signed.body:
            raise VerificationFailed("a body that is not a form must be signed with a bodySHA256 query parameter")
        if body_hash is not None and not hmac.compare_digest(hashlib.sha256(signed.body).hexdigest(), body_hash):
            raise VerificationFailed("the body does not match its bodySHA256 query parameter")
    for url in _twilio_urls(signed.url):
        expected = hmac.new(secret.encode(), (url + material).encode(), hashlib.sha1).digest()
        if _digest_matches(expected, given):
            return
    raise VerificationFailed(SIGNATURE_MISMATCH)


def _sendgrid_verify(public_key: str, signed: Signed, header: str) -> None:
    """SendGrid's signed Event Webhook: an ECDSA (P-256, SHA-256) signature, base64 DER in
    ``X-Twilio-Email-Event-Webhook-Signature``, of the timestamp header followed by the body;
    the source's secret is the verification key SendGrid shows (base64 DER public key)."""
    given = signed.header(header)
    stamp = signed.header("X-Twilio-Email-Event-Webhook-Timestamp")
    _check_timestamp(stamp, signed.now)
    try:
        key = serialization.load_der_public_key(base64.b64decode(ecdsa_public_key_der(public_key)))
        signature = base64.b64decode(given)
    except (binascii.Error, ValueError):
        raise VerificationFailed(SIGNATURE_MISMATCH) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationFailed("the source's verification key is not an ECDSA public key")
    try:
        key.verify(signature, stamp.encode() + signed.body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationFailed(SIGNATURE_MISMATCH) from None


def ecdsa_public_key_der(text: str) -> str:
    """The base64 DER inside a PEM public key, or the text itself (SendGrid shows base64)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


def ecdsa_public_key_error(text: str) -> str | None:
    """Why ``text`` is not an ECDSA public key (base64 DER or PEM), or None."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(ecdsa_public_key_der(text), validate=True))
    except (binascii.Error, ValueError):
        return "the verification key must be the base64 (or PEM) ECDSA public key SendGrid shows"
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return "the verification key is not an ECDSA public key"
    return None


def _basic_auth_verify(secret: str, signed: Signed, header: str) -> None:
    """HTTP Basic credentials (Postmark puts ``user:password@`` in the webhook URL); the
    source's secret is ``user:password``."""
    given = signed.header(header)
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "basic":
        raise VerificationFailed(f"the {header} header is not Basic credentials")
    try:
        credentials = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed(f"the {header} header is not Basic credentials") from None
    if not hmac.compare_digest(credentials, secret.encode()):
        raise VerificationFailed("the credentials do not match")


_STANDARD_HEADERS = ("id", "timestamp", "signature")


def _standard_webhooks_verify(secret: str, signed: Signed, header: str) -> None:
    """``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` (or the same under
    ``svix-*``, as Svix, Clerk and Resend send them), checked by the ``standardwebhooks``
    library (every listed v1 signature)."""
    svix = signed.headers.get("svix-signature") and not signed.headers.get("webhook-signature")
    prefix = "svix-" if svix else "webhook-"
    wanted = {f"webhook-{part}": signed.header(prefix + part) for part in _STANDARD_HEADERS}
    _check_timestamp(wanted["webhook-timestamp"], signed.now)
    try:
        Webhook(secret).verify(signed.body, wanted, json_parse=False)
    except Exception:  # WebhookVerificationError, and ValueError/binascii.Error on garbled headers
        raise VerificationFailed(SIGNATURE_MISMATCH) from None


_VERIFIERS = {
    VerificationType.STANDARD_WEBHOOKS: _standard_webhooks_verify,
    VerificationType.STRIPE: _stripe_verify,
    VerificationType.SLACK: _slack_verify,
    VerificationType.PADDLE: _paddle_verify,
    VerificationType.TWILIO: _twilio_verify,
    VerificationType.SENDGRID: _sendgrid_verify,
    VerificationType.BASIC_AUTH: _basic_auth_verify,
}


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
