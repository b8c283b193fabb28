"""Outgoing signatures of HTTP destinations: the ``signing_config`` schema and the headers.

Two modes (spec §4):

- ``hmac`` (the default): ``{secret, algorithm sha256|sha1, header, prefix, include_timestamp}``;
  the header carries ``prefix + hex HMAC`` of the body, or of ``"{unix_ts}.{body}"`` when
  ``include_timestamp`` is on.
- ``standard_webhooks``: ``{"mode": "standard_webhooks", "secret": "whsec_…"}``; the
  ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` headers of the Standard
  Webhooks specification, computed by the ``standardwebhooks`` library.

The stored config has ``secret`` encrypted (``hookstream.crypto``); :func:`signature_headers`
takes the decrypted config.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookstream.headers import control_character_error, header_name_error

SECRET_FIELDS = ("secret",)

MODE_HMAC = "hmac"
MODE_STANDARD_WEBHOOKS = "standard_webhooks"
ALGORITHMS = ("sha256", "sha1")
DEFAULT_HEADER = "X-hookstream-Signature"
_HMAC_KEYS = {"mode", "secret", "algorithm", "header", "prefix", "include_timestamp"}
_STANDARD_KEYS = {"mode", "secret"}


class SigningConfigError(Exception):
    """A bad ``signing_config``: ``errors`` maps ``signing_config.<field>`` to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def validate_signing_config(config) -> dict | None:
    """Check a plaintext ``signing_config`` and return it with defaults filled in.

    ``None`` (or ``{}``) means "do not sign". Raises :class:`SigningConfigError`.
    """
    if config is None or config == {}:
        return None
    if not isinstance(config, dict):
        raise SigningConfigError({"signing_config": ["Must be a JSON object or null."]})
    mode = config.get("mode", MODE_HMAC)
    if mode == MODE_STANDARD_WEBHOOKS:
        return _validate_standard(config)
    if mode != MODE_HMAC:
        raise SigningConfigError({"signing_config.mode": [f"Must be one of: {MODE_HMAC}, {MODE_STANDARD_WEBHOOKS}."]})
    return _validate_hmac(config)


def _unknown(config: dict, allowed: set[str], errors: dict) -> None:
    for key in config:
        if key not in allowed:
            errors[f"signing_config.{key}"] = [f"Unknown field; allowed: {', '.join(sorted(allowed))}."]


def _validate_hmac(config: dict) -> dict:
    errors: dict[str, list[str]] = {}
    _unknown(config, _HMAC_KEYS, errors)
    secret = config.get("secret")
    if not isinstance(secret, str) or not secret:
        errors["signing_config.secret"] = ["A non-empty string is required."]
    algorithm = config.get("algorithm", "sha256")
    if algorithm not in ALGORITHMS:
        errors["signing_config.algorithm"] = [f"Must be one of: {', '.join(ALGORITHMS)}."]
    header = config.get("header", DEFAULT_HEADER)
    if header_name_error(header):
        errors["signing_config.header"] = ["Must be a valid HTTP header name."]
    prefix = config.get("prefix", f"{algorithm}=" if algorithm in ALGORITHMS else "")
    if not isinstance(prefix, str) or control_character_error(prefix) or len(prefix) > 50:
        errors["signing_config.prefix"] = ["Must be a string of at most 50 characters without line breaks."]
    include_timestamp = config.get("include_timestamp", False)
    if not isinstance(include_timestamp, bool):
        errors["signing_config.include_timestamp"] = ["Must be a boolean."]
    if errors:
        raise SigningConfigError(errors)
    return {
        "mode": MODE_HMAC,
        "secret": secret,
        "algorithm": algorithm,
        "header": header,
        "prefix": prefix,
        "include_timestamp": include_timestamp,
    }


def _validate_standard(config: dict) -> dict:
    errors: dict[str, list[str]] = {}
    _unknown(config, _STANDARD_KEYS, errors)
    secret = config.get("secret")
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        errors["signing_config.secret"] = ['Must be a Standard Webhooks secret: "whsec_" + base64.']
    else:
        try:
            Webhook(secret)
        except Exception:  # the library raises binascii/ValueError variants for bad base64
            errors["signing_config.secret"] = ['Must be a Standard Webhooks secret: "whsec_" + base64.']
    if errors:
        raise SigningConfigError(errors)
    return {"mode": MODE_STANDARD_WEBHOOKS, "secret": secret}


def signature_headers(config: dict | None, *, body: bytes, event_id: str, timestamp: datetime) -> dict[str, str]:
    """The signature headers for one request, from a validated, decrypted ``signing_config``.

    The one signer of outgoing requests (the HTTP provider calls it). Keys a config may lack
    (rows written before a default existed) take the defaults of :func:`validate_signing_config`.
    """
    if not config or not config.get("secret"):
        return {}
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    unix = int(timestamp.timestamp())
    if config.get("mode") == MODE_STANDARD_WEBHOOKS:
        # Computed here rather than with Webhook.sign, which takes text: bodies are bytes.
        # webhook-id is the event id: stable across retries, so receivers can deduplicate.
        key = base64.b64decode(config["secret"].removeprefix("whsec_"))
        mac = hmac.new(key, f"{event_id}.{unix}.".encode() + body, hashlib.sha256).digest()
        signature = "v1," + base64.b64encode(mac).decode()
        return {"webhook-id": event_id, "webhook-timestamp": str(unix), "webhook-signature": signature}
    algorithm = config.get("algorithm") or "sha256"
    digest = hashlib.sha1 if algorithm == "sha1" else hashlib.sha256
    signed = f"{unix}.".encode() + body if config.get("include_timestamp") else body
    hex_mac = hmac.new(str(config["secret"]).encode(), signed, digest).hexdigest()
    prefix = config.get("prefix")
    if prefix is None:
        prefix = f"{algorithm}="
    return {config.get("header") or DEFAULT_HEADER: f"{prefix}{hex_mac}"}


def verify_standard_webhooks(secret: str, *, body: bytes, headers: dict[str, str]) -> bool:
    """True when ``headers`` carry a valid Standard Webhooks signature of ``body`` (for tests
    and receivers)."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True
