"""Run untrusted computations in child processes with a hard time and memory limit.

Some work is written by tenants (JSONata transforms) and can loop, backtrack or allocate
without bound. A check between evaluation steps does not stop it: one regex call or one
big allocation is a single step. So such work runs in a :class:`Sandbox`, a small pool of
child processes:

- children are fresh interpreters (spawned, never a fork of the caller: a Celery worker runs
  threads, and a forked copy of a threaded process can inherit a lock another thread held),
  started lazily, one per slot. A child loads this file by path and imports only the modules
  it is given: not the ``hookstream`` package (which loads Django settings and Celery), and
  not the caller's ``__main__`` (which multiprocessing's spawn and forkserver contexts re-run
  in every child: a script, gunicorn's or Celery's entry point);
- a child limits its own address space (``RLIMIT_AS``) to what it uses once started plus
  the pool's memory allowance, so an allocation beyond it fails with ``MemoryError``;
- the caller waits for the answer until the time limit, then kills the child (SIGKILL);
- a child that breached a limit or died is replaced by a fresh one on the next call;
  a child that answered normally is reused (no start-up cost per call);
- requests and answers are JSON over a socket pair (never pickle: the answer comes from a
  process running tenant code), and an answer is read up to a size limit.

The pool is safe to use from many threads: each call takes a free slot (waiting for one if
all are busy), so at most ``workers`` computations run at a time per process. Each process
has its own pools; a process that forks (a pre-forking server) starts afresh in the child.

This module is the lowest layer: it imports nothing from the apps, and the child side uses
the standard library only. A function run in the sandbox is named ``"module:function"``,
takes and returns JSON values, and reports a limit it detected itself by raising
``TimeoutError`` (e.g. an evaluator's own time-out) or ``MemoryError``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

try:
    import resource
except ImportError:  # not on this platform: the time limit still holds
    resource = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# How long a new child may take to start and report ready (not counted in the time limit).
START_TIMEOUT_SECONDS = 30.0
# After answering this many calls a child is replaced: a long-lived interpreter's heap only
# grows (fragmentation), and its allowance is measured once, at start.
CALLS_PER_CHILD = 1000
# The parent waits this much past the time limit before killing a child, so that a function
# that stops itself at the limit (raising TimeoutError) keeps its child.
KILL_GRACE_MS = 100
MAX_ERROR_CHARS = 2000
TIME, MEMORY, OUTPUT, CRASH = "time", "memory", "output", "crash"
# The directory holding the apps, so that a child finds the modules it is told to import.
_PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the child runs: load this file under a private name, then serve (see _child_main).
_CHILD_CODE = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_hookstream_sandbox_child', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "module._child_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])\n"
)


class SandboxError(Exception):
    """The sandbox could not give an answer."""


class SandboxUnavailable(SandboxError):
    """No child could be started, or none was free in time: not the computation's fault."""


class SandboxFailed(SandboxError):
    """The function raised; ``str()`` is its message."""


class SandboxLimitExceeded(SandboxError):
    """The computation breached a limit; ``kind`` is time, memory, output or crash."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


# --- the child -----------------------------------------------------------------------------


def _address_space() -> int | None:
    """This process's virtual size in bytes (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _limit_memory(allowance: int) -> None:
    """Cap the address space at what the child uses now plus ``allowance`` bytes."""
    if resource is None or not hasattr(resource, "RLIMIT_AS"):
        return
    current = _address_space()
    if current is None:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + allowance
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _caused_by_memory(exc: BaseException) -> bool:
    """Was ``exc`` a MemoryError, or raised while handling one? (Evaluators wrap errors.)"""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, MemoryError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _resolve(name: str):
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _answer(value, max_bytes: int) -> bytes:
    """The reply carrying ``value`` (UTF-8 JSON: a lone surrogate is not a JSON value)."""
    try:
        reply = json.dumps({"ok": value}, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError):
        return json.dumps({"error": "the result is not a JSON value"}).encode()
    if len(reply) > max_bytes:
        return _breach(OUTPUT)
    return reply


def _breach(kind: str) -> bytes:
    return json.dumps({"breach": kind}).encode()


def _child_main(fd: int, allowance: int, max_bytes: int, preload: list[str]) -> None:
    """Answer requests on socket ``fd`` until the parent goes away (or after CALLS_PER_CHILD)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a child ends
    conn = Connection(fd)
    for name in preload:
        importlib.import_module(name)
    _limit_memory(allowance)
    conn.send_bytes(b'{"ready":true}')
    for _ in range(CALLS_PER_CHILD):
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        stop = False
        try:
            reply = _answer(_resolve(request["function"])(*request["args"]), max_bytes)
        except TimeoutError:
            reply = _breach(TIME)
        except Exception as exc:
            if _caused_by_memory(exc):
                # The heap may be in pieces after a MemoryError: a fresh child takes over.
                reply, stop = _breach(MEMORY), True
            else:
                reply = json.dumps({"error": (str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS]}).encode()
        try:
            conn.send_bytes(reply)
        except (OSError, MemoryError):
            return
        if stop:
            return


# --- the parent ----------------------------------------------------------------------------


class _Child:
    """One started child and the parent's end of its socket pair."""

    def __init__(self, *, allowance: int, max_bytes: int, preload: tuple[str, ...]):
        parent_end, child_end = socket.socketpair()
        self.calls = 0
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PROJECT_DIR, env.get("PYTHONPATH")]))
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CHILD_CODE,
                    os.path.abspath(__file__),
                    str(child_end.fileno()),
                    str(allowance),
                    str(max_bytes),
                    *preload,
                ],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                cwd=_PROJECT_DIR,
                start_new_session=True,  # a terminal's Ctrl-C goes to the parent only
            )
        except OSError as exc:
            parent_end.close()
            raise SandboxUnavailable(f"a sandbox process did not start: {exc}") from None
        finally:
            child_end.close()
        self.conn = Connection(parent_end.detach())
        try:
            ready = self.conn.poll(START_TIMEOUT_SECONDS) and self.conn.recv_bytes(64) == b'{"ready":true}'
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise SandboxUnavailable("a sandbox process did not start")

    def alive(self) -> bool:
        return self.process.poll() is None and self.calls < CALLS_PER_CHILD

    def exit_code(self) -> int | None:
        try:
            return self.process.wait(1)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            logger.warning("sandbox process %s did not end after SIGKILL", self.process.pid)
        finally:
            self.conn.close()


class Sandbox:
    """A pool of ``workers`` child processes (see the module docstring).

    ``memory_mb``: what a computation may allocate on top of the child's own use once started.
    ``max_result_bytes``: the largest answer (JSON) a computation may give.
    ``preload``: modules each child imports when it starts (before its memory is measured).
    """

    def __init__(self, *, workers: int, memory_mb: int, max_result_bytes: int, preload: tuple[str, ...] = ()):
        self.workers = workers
        self.memory_mb = memory_mb
        self.max_result_bytes = max_result_bytes
        self.preload = tuple(preload)
        self._slots: queue.LifoQueue[_Child | None] = queue.LifoQueue()
        for _ in range(workers):
            self._slots.put(None)  # a child is started on first use
        self._closed = False

    def call(self, function: str, *args, timeout_ms: int, wait_seconds: float = 60.0):
        """Run ``function(*args)`` in a child and return its result.

        Raises SandboxLimitExceeded (time, memory, output, crash), SandboxFailed (the function
        raised) or SandboxUnavailable (no child free within ``wait_seconds``, or none starts).
        """
        try:
            child = self._slots.get(timeout=wait_seconds)
        except queue.Empty:
            raise SandboxUnavailable(f"no sandbox process was free within {wait_seconds:g} s") from None
        keep = False
        try:
            if child is not None and not child.alive():
                child.stop()
                child = None
            if child is None:
                child = _Child(
                    allowance=self.memory_mb * 1024 * 1024,
                    max_bytes=self.max_result_bytes,
                    preload=self.preload,
                )
            try:
                result = self._run(child, function, args, timeout_ms)
            except SandboxFailed:
                keep = True  # the function raised and the child answered: it is fine
                raise
            keep = True
            return result
        finally:
            if child is not None and (not keep or self._closed):
                child.stop()
                child = None
            self._slots.put(child)

    def _run(self, child: _Child, function: str, args, timeout_ms: int):
        request = json.dumps({"function": function, "args": list(args)}, separators=(",", ":")).encode()
        deadline = time.monotonic() + (timeout_ms + KILL_GRACE_MS) / 1000.0
        child.calls += 1
        try:
            child.conn.send_bytes(request)
            if not child.conn.poll(max(0.0, deadline - time.monotonic())):
                raise SandboxLimitExceeded(TIME, f"exceeded its {timeout_ms} ms limit")
            # The child checks the size too; this bound only guards the parent.
            raw = child.conn.recv_bytes(self.max_result_bytes + 1024)
        except (EOFError, BrokenPipeError, ConnectionResetError):
            raise SandboxLimitExceeded(CRASH, f"stopped its sandbox process (exit code {child.exit_code()})") from None
        except OSError:  # recv_bytes: the answer is longer than allowed
            raise SandboxLimitExceeded(OUTPUT, self._output_message()) from None
        try:
            reply = json.loads(raw)
        except ValueError:
            raise SandboxLimitExceeded(CRASH, "gave an answer that is not JSON") from None
        if "ok" in reply:
            return reply["ok"]
        if "error" in reply:
            raise SandboxFailed(reply["error"])
        kind = reply.get("breach")
        if kind == TIME:
            raise SandboxLimitExceeded(TIME, f"exceeded its {timeout_ms} ms limit")
        if kind == MEMORY:
            raise SandboxLimitExceeded(MEMORY, f"exceeded its {self.memory_mb} MB memory limit")
        if kind == OUTPUT:
            raise SandboxLimitExceeded(OUTPUT, self._output_message())
        raise SandboxFailed(f"unexpected answer from the sandbox: {raw[:200]!r}")

    def _output_message(self) -> str:
        return f"gave a result over its {self.max_result_bytes} bytes limit"

    def close(self) -> None:
        """Stop the idle children; busy ones are stopped when their call returns."""
        self._closed = True
        while True:
            try:
                child = self._slots.get_nowait()
            except queue.Empty:
                return
            if child is not None:
                child.stop()


# --- one pool per name and configuration, per process ----------------------------------------

_pools: dict[str, tuple[tuple, Sandbox]] = {}
_pools_lock = threading.Lock()


def sandbox_get(
    name: str, *, workers: int, memory_mb: int, max_result_bytes: int, preload: tuple[str, ...] = ()
) -> Sandbox:
    """The pool called ``name`` in this process, with this configuration.

    A changed configuration (settings overridden in a test, say) replaces the pool; the old
    one's idle children are stopped.
    """
    config = (workers, memory_mb, max_result_bytes, tuple(preload))
    with _pools_lock:
        current = _pools.get(name)
        if current is not None and current[0] == config:
            return current[1]
        pool = Sandbox(workers=workers, memory_mb=memory_mb, max_result_bytes=max_result_bytes, preload=preload)
        _pools[name] = (config, pool)
    if current is not None:
        current[1].close()
    return pool


def _forget_pools_after_fork() -> None:
    """A forked process starts with no pools: the pipes it inherited belong to its parent."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_after_fork)
