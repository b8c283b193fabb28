"""Shared helpers for tests that need a real service.

On a developer's machine a missing service skips the test; in CI (``CI=true``) it fails the
run, because CI must exercise every real counterpart.
"""

import os
import socket

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, available: bool, hint: str = "") -> None:
    """Skip (laptop) or fail (CI) when ``name`` is not available."""
    if available:
        return
    message = f"{name} is not available" + (f": {hint}" if hint else "")
    if IN_CI:
        pytest.fail(message + " (CI must provide it)")
    pytest.skip(message)


def require_postgres() -> None:
    require_service("PostgreSQL", settings.IS_POSTGRES, "set DATABASE_URL=postgres://…")


def require_redis() -> None:
    require_service("Redis", bool(settings.REDIS_URL) and port_open("127.0.0.1", 6379), "set REDIS_URL=redis://…")
