"""JSONata transforms of connections and subscriptions (``jsonata-python``).

A transform is tenant code: it can backtrack in a regex or allocate a huge array in one
evaluation step, which no check between steps interrupts. So it never runs in the caller's
process. Both compiling (at create/update time) and evaluating (in the delivery worker, before
the first attempt) happen in ``hookstream.sandbox`` child processes (``transforms_child``),
with a hard wall-clock limit (``HOOKSTREAM_TRANSFORM_TIMEOUT_MS``) and a memory limit
(``HOOKSTREAM_TRANSFORM_MEMORY_MB``); ``HOOKSTREAM_TRANSFORM_WORKERS`` children per process.
Compiling is done there too because it is not linear: a 10 000-character path expression
takes over a second to parse.
"""

from __future__ import annotations

from django.conf import settings

from hookstream import sandbox

MAX_EXPRESSION_LENGTH = 10_000
POOL = "transforms"
CHILD = "intake.transforms_child"


class TransformError(Exception):
    """The transform failed at run time or did not give a JSON object."""


class TransformLimitExceeded(TransformError):
    """The transform breached the sandbox's time or memory limit (or its output limit)."""


class TransformUnavailable(Exception):
    """The sandbox could not run the transform now (no process free or none started)."""


# --- in the caller -------------------------------------------------------------------------------


def _pool() -> sandbox.Sandbox:
    return sandbox.sandbox_get(
        POOL,
        workers=settings.HOOKSTREAM_TRANSFORM_WORKERS,
        memory_mb=settings.HOOKSTREAM_TRANSFORM_MEMORY_MB,
        # A transformed payload may be at most twice the largest event body.
        max_result_bytes=2 * settings.HOOKSTREAM_MAX_BODY_BYTES,
        preload=(CHILD,),
    )


def expression_errors(expression) -> list[str]:
    """What is wrong with ``expression`` as JSONata (empty when it compiles)."""
    if expression in (None, ""):
        return []
    if not isinstance(expression, str):
        return ["must be a string"]
    if len(expression) > MAX_EXPRESSION_LENGTH:
        return [f"must be at most {MAX_EXPRESSION_LENGTH} characters"]
    timeout_ms = settings.HOOKSTREAM_TRANSFORM_TIMEOUT_MS
    try:
        return _pool().call(f"{CHILD}:compile_errors", expression, timeout_ms=timeout_ms)
    except sandbox.SandboxLimitExceeded as exc:
        if exc.kind == sandbox.TIME:
            return [f"invalid JSONata: the expression took longer than {timeout_ms} ms to compile"]
        return [f"invalid JSONata: the expression could not be compiled ({exc})"]
    except sandbox.SandboxFailed as exc:
        return [f"invalid JSONata: {exc}"]


def transform_apply(expression: str, payload) -> dict:
    """Run ``expression`` over ``payload`` in the sandbox; the result must be a JSON object.

    Raises TransformLimitExceeded (time, memory or output limit), TransformError (any other
    failure) or TransformUnavailable (the sandbox could not run it now: try again later).
    """
    timeout_ms = settings.HOOKSTREAM_TRANSFORM_TIMEOUT_MS
    try:
        return _pool().call(f"{CHILD}:evaluate", expression, payload, timeout_ms, timeout_ms=timeout_ms)
    except sandbox.SandboxLimitExceeded as exc:
        raise TransformLimitExceeded(f"transform {exc}") from None
    except sandbox.SandboxFailed as exc:
        raise TransformError(str(exc)) from None
    except sandbox.SandboxUnavailable as exc:
        raise TransformUnavailable(str(exc)) from None
