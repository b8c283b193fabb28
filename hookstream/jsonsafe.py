"""JSON as PostgreSQL's jsonb can store it.

``json.loads`` accepts documents that jsonb refuses, and the refusal comes late, as a
database error when the row is written: ``NaN``/``Infinity``, numbers beyond the float
range (``1e999``), lone UTF-16 surrogates (``"\\ud800"``) and NUL (``"\\u0000"``) inside
strings. Deep nesting parses but makes the later ``json.dumps`` (when the row is written)
raise ``RecursionError``. :func:`storable_loads` refuses all of these up front, so the API
can answer 400 and ingest can keep such a body raw (``payload: null``).

The checks on strings and depth run only when a cheap scan of the raw bytes says they
might be needed, so an ordinary body costs one parse.
"""

from __future__ import annotations

import json
import math
import re

# Deeper documents are refused: far below the interpreter's recursion limit, so that
# encoding one again (when the row is written, a hundred frames further down) cannot fail.
MAX_DEPTH = 200

# A \u escape of a surrogate, or a surrogate encoded directly in UTF-8 (which json.loads
# lets through on bytes): the only ways a lone surrogate gets into a parsed string.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


class NotStorable(ValueError):
    """Valid JSON (or nearly: NaN) that jsonb cannot hold; the message says why.

    ``path`` is where in the document, when known: keys and list indexes from the top.
    """

    def __init__(self, message: str, path: tuple = ()):
        super().__init__(message)
        self.path = path


def _refuse_constant(name: str):
    raise NotStorable(f"{name} is not a JSON number that can be stored")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotStorable(f"the number {text[:40]} is out of range")
    return value


# One decoder: json.loads with hooks would build a new one (and its scanner) on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def storable_loads(raw: bytes | str):
    """Parse ``raw`` as JSON that jsonb can store.

    Raises ``NotStorable`` for what jsonb refuses (and for nesting deeper than
    ``MAX_DEPTH``), ``ValueError`` (``json.JSONDecodeError``, ``UnicodeDecodeError``)
    for what is not JSON at all.
    """
    text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise NotStorable(f"the document is nested more than {MAX_DEPTH} levels deep") from None
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    check_strings = b"\\u0000" in data or _may_hold_surrogate(data)
    check_depth = data.count(b"[") + data.count(b"{") > MAX_DEPTH
    if check_strings or check_depth:
        _walk(value, check_strings=check_strings)
    return value


def _may_hold_surrogate(data: bytes) -> bool:
    # Plain substring tests first: far cheaper than the regular expression on every body.
    if b"\\ud" not in data and b"\\uD" not in data and b"\xed" not in data:
        return False
    return _MAYBE_SURROGATE.search(data) is not None


def _walk(value, *, check_strings: bool) -> None:
    """Depth and string checks without recursion (the document may be deep)."""
    too_deep = f"the document is nested more than {MAX_DEPTH} levels deep"
    stack: list[tuple[object, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            if len(path) >= MAX_DEPTH:
                raise NotStorable(too_deep)
            for key, child in item.items():
                if check_strings:
                    _check_string(key, path)
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
            if len(path) >= MAX_DEPTH:
                raise NotStorable(too_deep)
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
        elif check_strings and isinstance(item, str):
            _check_string(item, path)


def _check_string(text: str, path: tuple) -> None:
    if "\x00" in text:
        raise NotStorable("a string contains the NUL character (\\u0000)", path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotStorable("a string contains a lone UTF-16 surrogate (such as \\ud800)", path) from None


def path_text(path: tuple) -> str:
    """``("filter_rules", 0, "value")`` as ``filter_rules[0].value``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
