"""Encryption of secrets at rest, and masking of secrets in responses.

Encrypted values are stored as ``enc:v1:<fernet token>`` strings inside JSON config
fields, so a config dict can hold a mix of plain and secret values.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

PREFIX = "enc:v1:"
MASK = "****"


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def encrypt(value: str) -> str:
    if is_encrypted(value):
        return value
    token = _fernet(settings.HOOKSTREAM_ENCRYPTION_KEY).encrypt(value.encode()).decode()
    return PREFIX + token


def decrypt(value: str) -> str:
    if not is_encrypted(value):
        return value
    try:
        return _fernet(settings.HOOKSTREAM_ENCRYPTION_KEY).decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValueError("a stored secret cannot be decrypted with HOOKSTREAM_ENCRYPTION_KEY") from None


def is_encrypted(value) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def mask(plaintext: str) -> str:
    """Show only the last 4 characters (spec §3)."""
    if not plaintext:
        return plaintext
    return MASK + plaintext[-4:] if len(plaintext) > 4 else MASK


def is_mask_of(candidate, plaintext: str) -> bool:
    """True when a client echoed back the masked form of a stored secret."""
    return isinstance(candidate, str) and candidate.startswith(MASK) and candidate == mask(plaintext)


def encrypt_fields(config: dict, secret_fields, previous: dict | None = None) -> dict:
    """Encrypt ``secret_fields`` of ``config``; an echoed mask keeps the previous secret."""
    result = dict(config)
    previous = previous or {}
    for field in secret_fields:
        value = result.get(field)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            continue
        if field in previous and previous[field] not in (None, ""):
            old_plain = decrypt(previous[field])
            if is_mask_of(value, old_plain):
                result[field] = previous[field]
                continue
        result[field] = encrypt(value)
    return result


def decrypt_fields(config: dict, secret_fields) -> dict:
    result = dict(config)
    for field in secret_fields:
        if field in result and isinstance(result[field], str):
            result[field] = decrypt(result[field])
    return result


def mask_fields(config: dict, secret_fields) -> dict:
    result = dict(config)
    for field in secret_fields:
        if field in result and isinstance(result[field], str) and result[field]:
            result[field] = mask(decrypt(result[field]))
    return result
