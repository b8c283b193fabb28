"""JSONata transforms of connections and subscriptions (``jsonata-python``).

The expression runs over the event's JSON body and must give a JSON object. An expression
is compiled per evaluation: a compiled ``Jsonata`` holds its input in a shared frame (not
thread-safe) and its time budget starts when it is compiled; compiling costs ~0.1 ms.
"""

from __future__ import annotations

import json

import jsonata

# A runaway expression (an endless recursion, a huge $map) is stopped, not left to hang ingest.
TIMEOUT_MS = 1000
MAX_DEPTH = 200
MAX_EXPRESSION_LENGTH = 10_000


class TransformError(Exception):
    """The transform failed at run time or did not give a JSON object."""


def _message(exc: Exception) -> str:
    text = str(exc) or exc.__class__.__name__
    code = getattr(exc, "error", None)
    return f"{text} ({code})" if code and code not in text else text


def expression_errors(expression) -> list[str]:
    """What is wrong with ``expression`` as JSONata (empty when it compiles)."""
    if expression in (None, ""):
        return []
    if not isinstance(expression, str):
        return ["must be a string"]
    if len(expression) > MAX_EXPRESSION_LENGTH:
        return [f"must be at most {MAX_EXPRESSION_LENGTH} characters"]
    try:
        compiled = jsonata.Jsonata(expression)
    except Exception as exc:  # the parser raises JException, and a few Python errors on odd input
        return [f"invalid JSONata: {_message(exc)}"]
    if compiled.get_errors():
        return [f"invalid JSONata: {_message(compiled.get_errors()[0])}"]
    return []


def transform_apply(expression: str, payload) -> dict:
    """Run ``expression`` over ``payload``; the result must be a JSON object."""
    try:
        result = jsonata.Jsonata(expression, timeout=TIMEOUT_MS, stack=MAX_DEPTH).evaluate(payload)
    except RecursionError:
        raise TransformError("the expression recursed too deeply") from None
    except Exception as exc:
        raise TransformError(_message(exc)) from None
    if not isinstance(result, dict):
        kind = "nothing" if result is None else type(result).__name__
        if isinstance(result, list):
            kind = "an array"
        raise TransformError(f"the transform must produce a JSON object, it produced {kind}")
    try:
        # A function or a NaN has no JSON form; find out now, not in the engine.
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise TransformError("the transform produced a value that is not JSON") from None
    if "\\u0000" in text:
        raise TransformError("the transform produced a NUL character, which cannot be stored")
    return result
