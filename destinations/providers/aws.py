"""Shared pieces of the AWS destinations (sqs, s3, eventbridge).

* :func:`client` — one boto3 client per (service, region, endpoint, access key id, secret,
  session token, time-out), created once and reused across deliveries (boto3 clients are
  thread-safe; creating them is not cheap). It sends through ``hookstream.outbound`` (the
  egress policy, pinned connections, the attempt deadline, a bounded read), not through
  botocore's own pool; botocore's own retries are off because the engine retries.
* :func:`classify` — a botocore exception as an :class:`Outcome`: retried by policy, unless
  the egress policy refused the endpoint, botocore refused the parameters, or AWS refused the
  message itself (:data:`PERMANENT_CODES`).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from destinations.providers.base import Outcome
from hookstream import outbound
from hookstream.ssrf import SSRFRefused

# The most of an AWS error code and message an attempt row keeps.
MAX_ERROR_CHARS = 200
# What an endpoint_url / queue_url may start with.
HTTP_SCHEMES = ("http", "https")

_clients: dict[tuple, object] = {}
_lock = threading.Lock()

# Error codes about the message itself: no change on the AWS side lets it through, so these
# are the only answers not retried. Everything else (a missing queue, bucket or bus, access
# denied, expired or wrong credentials…) is retried by the destination's policy, as for HTTP
# (spec §3): the resource or the permission may be fixed within the retry window.
PERMANENT_CODES = {
    "InvalidMessageContents",
    "AWS.SimpleQueueService.InvalidMessageContents",
    "EntityTooLarge",
}


def client(service: str, config: dict, timeout_ms: int | None):
    """The cached boto3 client for ``service`` with the destination's credentials."""
    region = config.get("region") or None
    endpoint = config.get("endpoint_url") or None
    key_id = config.get("access_key_id") or None
    secret = config.get("secret_access_key") or None
    token = config.get("session_token") or None
    # The secret is part of the key (hashed) so a rotated secret gets a fresh client.
    fingerprint = hashlib.sha256(f"{secret}\0{token}".encode()).hexdigest()
    timeout = max(int(timeout_ms or 30000), 1) / 1000.0
    cache_key = (service, region, endpoint, key_id, fingerprint, timeout)
    with _lock:
        cached = _clients.get(cache_key)
        if cached is not None:
            return cached
        botocore_config = Config(
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=50,
            s3={"addressing_style": "path"} if endpoint else None,
        )
        created = boto3.session.Session().client(
            service,
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=botocore_config,
        )
        outbound.route_botocore(created)
        _clients[cache_key] = created
        return created


def call(service: str, config: dict, timeout_ms: int | None, operation: str, **params: Any) -> dict:
    """``operation`` of the cached client for ``service``, bounded by the attempt deadline."""
    api = client(service, config, timeout_ms)
    with outbound.attempt_deadline(timeout_ms):
        return getattr(api, operation)(**params)


def clear_clients() -> None:
    """Forget every cached client (tests)."""
    with _lock:
        _clients.clear()


def error_code(exc: ClientError) -> str:
    return str((exc.response or {}).get("Error", {}).get("Code") or "")


def classify(exc: Exception, base: dict, timeout_ms: int | None = None) -> Outcome:
    """A failed AWS call as an Outcome: permanent only for a refused endpoint, parameters
    botocore will not send, or a message AWS refuses as such; every other failure is retried."""
    if isinstance(exc, SSRFRefused):
        return Outcome.permanent(f"SSRF guard: {exc}", **base)
    if isinstance(exc, ClientError):
        response = exc.response or {}
        code = error_code(exc)[:MAX_ERROR_CHARS]
        # botocore puts an unparsable answer's whole text in Message: keep a short prefix only,
        # so the attempt row is not a way to read what an endpoint answers.
        message = str(response.get("Error", {}).get("Message") or "")[:MAX_ERROR_CHARS]
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        error = f"{code or 'error'}: {message}".strip().rstrip(":") if message else (code or str(exc))
        fields = {**base, "response_status": status, "response_body": f"{code}: {message}"}
        if code in PERMANENT_CODES:
            return Outcome.permanent(error, **fields)
        return Outcome.retry(error, **fields)
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return Outcome.retry(f"timed out after {timeout_ms} ms: {exc}", **base)
    if isinstance(exc, EndpointConnectionError):
        return Outcome.retry(f"connection error: {exc}", **base)
    if isinstance(exc, ParamValidationError):
        return Outcome.permanent(f"invalid request: {exc}", **base)
    if isinstance(exc, BotoCoreError):
        return Outcome.retry(f"{type(exc).__name__}: {exc}", **base)
    return Outcome.retry(f"{type(exc).__name__}: {exc}", **base)


def summary(response: dict, *keys: str) -> str:
    """A short ``key=value`` text of ``response`` for the attempt row."""
    parts = [f"{key}={response[key]}" for key in keys if response.get(key) is not None]
    return " ".join(parts)


def status_of(response: dict) -> int | None:
    return (response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
