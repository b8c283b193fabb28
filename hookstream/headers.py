"""The rules for anything that becomes an HTTP header (or a line of a handshake).

One place for every field a tenant gives that ends up in a request: a destination's
``headers``, a WebSocket destination's ``provider_config.headers``, an API key header name, a
bearer token, a URL. A CR or LF would let the value start a header (or a request) of its own;
other control characters are refused too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from hookstream.crypto import MASK, mask

# RFC 9110 token characters: what a header name may contain.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Control characters other than horizontal tab (RFC 9110 field-value: no CTLs but HTAB).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_HEADERS = 50
MAX_HEADER_VALUE_CHARS = 8192


def header_name_error(name: object) -> str | None:
    if not isinstance(name, str) or not HEADER_NAME_RE.match(name):
        return f"{name!r} is not a valid header name."
    return None


def header_value_error(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"The value of {name} must be a string."
    if _CONTROL.search(value):
        return f"The value of {name} must not contain line breaks or control characters."
    if len(value) > MAX_HEADER_VALUE_CHARS:
        return f"The value of {name} is longer than {MAX_HEADER_VALUE_CHARS} characters."
    return None


def headers_errors(headers: Mapping[str, object], *, max_count: int | None = MAX_HEADERS) -> list[str]:
    """Every problem with a mapping of header names to values (empty: valid)."""
    if max_count is not None and len(headers) > max_count:
        return [f"At most {max_count} headers."]
    errors = []
    for name, value in headers.items():
        error = header_name_error(name) or header_value_error(name, value)
        if error:
            errors.append(error)
    return errors


def control_character_error(text: str) -> str | None:
    """For a URL or another value sent on a request line: refuse CR, LF and other controls
    (``urlsplit`` silently drops some of them, the raw string would still carry them)."""
    if _CONTROL.search(text) or "\t" in text:
        return "Must not contain line breaks or control characters."
    return None


# Header names whose values are credentials: masked wherever a header is shown.
SECRET_HEADER_RE = re.compile(r"(authorization|token|secret|api[-_]?key|password|cookie|signature-key)", re.I)
_AUTH_SCHEMES = {"bearer", "token"}


def is_secret_header(name: str) -> bool:
    return bool(SECRET_HEADER_RE.search(name))


def mask_header_value(value: str) -> str:
    """A credential header value as it may be shown: ``Bearer ****abcd`` (last 4 of the
    token), ``Basic ****`` (nothing of the base64, whose last characters are the password's),
    ``****abcd`` for a bare secret."""
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "basic":
        return f"{scheme} {MASK}"
    if rest and scheme.lower() in _AUTH_SCHEMES:
        return f"{scheme} {mask(rest)}"
    return mask(value)


def mask_headers(headers: Mapping[str, str], secrets: Collection[str] = ()) -> dict[str, str]:
    """``headers`` with credential values masked: values of credential-named headers, and
    values that are one of ``secrets``."""
    return {
        name: mask_header_value(value) if (is_secret_header(name) or value in secrets) else value
        for name, value in headers.items()
    }


def unmask_headers(headers: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """``headers`` sent back by a client, with every value that is the masked form of the
    stored value of the same header replaced by the stored value (an untouched secret)."""
    result = dict(headers)
    for name, value in headers.items():
        old = stored.get(name)
        if isinstance(old, str) and value != old and is_secret_header(name) and value == mask_header_value(old):
            result[name] = old
    return result
