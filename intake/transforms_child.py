"""The part of transforms that runs inside a sandbox child (``hookstream.sandbox``).

It imports jsonata and the standard library only: a child must start without Django. Errors
are raised as ``ValueError`` with the message the tenant will see; ``TimeoutError`` and
``MemoryError`` report a breached limit to the sandbox.
"""

from __future__ import annotations

import json

import jsonata

MAX_DEPTH = 200
# jsonata's own time-out error: the evaluation stopped itself at the limit.
JSONATA_TIMEOUT = "D1012"


def _message(exc: Exception) -> str:
    text = str(exc) or exc.__class__.__name__
    code = getattr(exc, "error", None)
    return f"{text} ({code})" if code and code not in text else text


def compile_errors(expression: str) -> list[str]:
    """What is wrong with ``expression`` as JSONata (empty when it compiles)."""
    try:
        compiled = jsonata.Jsonata(expression)
    except RecursionError:
        return ["invalid JSONata: the expression is nested too deeply"]
    except MemoryError:
        raise
    except Exception as exc:  # the parser raises JException, and a few Python errors on odd input
        return [f"invalid JSONata: {_message(exc)}"]
    if compiled.get_errors():
        return [f"invalid JSONata: {_message(compiled.get_errors()[0])}"]
    return []


def evaluate(expression: str, payload, timeout_ms: int) -> dict:
    """``expression`` over ``payload``; the result must be a JSON object."""
    try:
        result = jsonata.Jsonata(expression, timeout=timeout_ms, stack=MAX_DEPTH).evaluate(payload)
    except RecursionError:
        raise ValueError("the expression recursed too deeply") from None
    except MemoryError:
        raise
    except Exception as exc:
        if getattr(exc, "error", None) == JSONATA_TIMEOUT:
            raise TimeoutError from None
        if isinstance(exc.__context__, MemoryError):  # jsonata wraps some errors as "Unexpected"
            raise
        raise ValueError(_message(exc)) from None
    if not isinstance(result, dict):
        kind = "nothing" if result is None else type(result).__name__
        if isinstance(result, list):
            kind = "an array"
        raise ValueError(f"the transform must produce a JSON object, it produced {kind}")
    try:
        # A function, a NaN or a lone surrogate has no JSON (jsonb) form: find out now.
        text = json.dumps(result, allow_nan=False, ensure_ascii=False)
        text.encode()
    except (TypeError, ValueError, RecursionError):
        raise ValueError("the transform produced a value that is not JSON") from None
    if "\x00" in text or "\\u0000" in text:
        raise ValueError("the transform produced a NUL character, which cannot be stored")
    return result
