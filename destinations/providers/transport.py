"""The request helpers every provider that speaks HTTP shares (http, kafka, rabbitmq).

* :func:`exchange` — one request and its answer, read up to ``MAX_RESPONSE_READ`` bytes,
  with the headers capped as an attempt row keeps them; or the failure :class:`Outcome`.
  Call it inside ``hookstream.outbound.attempt_deadline`` so ``timeout_ms`` bounds it all.
* :func:`pooled_request` — the request alone, through this worker thread's SSRF-pinned,
  pooled client (``hookstream.outbound``); :func:`read_body` — the bounded read.
* :func:`failure_outcome` — one classification of request failures for every provider:
  a refused or invalid target is permanent, a time-out or connection error is retried.
* :func:`parse_retry_after` — seconds from a ``Retry-After`` header.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

import requests
import urllib3

from destinations.providers.base import Outcome
from hookstream import outbound
from hookstream.outbound import DeadlineExceeded
from hookstream.ssrf import SSRFRefused

# Read at most this much of a response (the attempt row keeps a shorter prefix); a longer
# body closes the connection instead of being drained.
MAX_RESPONSE_READ = 256 * 1024
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)


def failure_outcome(exc: Exception, *, base: dict, timeout_ms: int | None) -> Outcome | None:
    """The failure ``Outcome`` of a request that got no answer (None: not a request failure).

    A refused or invalid target is permanent; a time-out or connection error is retried. One
    classification for both clients (requests and urllib3), so every provider agrees.
    """
    if isinstance(exc, SSRFRefused):
        return Outcome.permanent(f"SSRF guard: {exc}", **base)
    if isinstance(exc, DeadlineExceeded):
        return Outcome.retry(f"timed out after {timeout_ms} ms: {exc}", **base)
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            urllib3.exceptions.LocationParseError,
        ),
    ):
        return Outcome.permanent(f"invalid URL: {short(exc)}", **base)
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # (a ConnectTimeoutError subclass in urllib3)
        return Outcome.retry(f"connection error: {short(exc)}", **base)
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)):
        return Outcome.retry(f"timed out after {timeout_ms} ms: {short(exc)}", **base)
    if isinstance(exc, (requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError, OSError)):
        # OSError: name resolution failures raised by the pinning adapter, among others.
        cause = ssrf_cause(exc)
        if cause is not None:
            return Outcome.permanent(f"SSRF guard: {cause}", **base)
        return Outcome.retry(f"connection error: {short(exc)}", **base)
    if isinstance(exc, requests.exceptions.RequestException):
        return Outcome.retry(f"request failed: {short(exc)}", **base)
    return None


def pooled_request(
    method: str, url: str, *, base: dict, timeout_ms: int | None, body: bytes, headers: dict[str, str]
) -> urllib3.BaseHTTPResponse | Outcome:
    """:func:`guarded_request` on the pinned urllib3 pool directly (``hookstream.outbound.request``).
    Returns the unread response, or the failure ``Outcome`` (:func:`failure_outcome`)."""
    timeout = max(timeout_ms or 30000, 1) / 1000.0
    try:
        return outbound.request(
            method, url, body=body, headers=headers, connect_timeout=min(timeout, 10.0), read_timeout=timeout
        )
    except Exception as exc:  # noqa: BLE001 - classified below; anything else is re-raised
        outcome = failure_outcome(exc, base=base, timeout_ms=timeout_ms)
        if outcome is None:
            raise
        return outcome


@dataclass
class Answer:
    """What an attempt keeps of an HTTP answer."""

    status: int
    headers: dict[str, str]  # capped (hookstream.outbound.capped_headers)
    text: str  # at most MAX_RESPONSE_READ bytes, decoded
    retry_after: float | None


def exchange(
    method: str, url: str, *, base: dict, timeout_ms: int | None, body: bytes, headers: dict[str, str]
) -> Answer | Outcome:
    """One request and its bounded answer, or the failure ``Outcome`` (no answer, or an
    answer that could not be read)."""
    response = pooled_request(method, url, base=base, timeout_ms=timeout_ms, body=body, headers=headers)
    if isinstance(response, Outcome):
        return response
    try:
        text = read_body(response)
    except DeadlineExceeded as exc:
        return Outcome.retry(f"timed out after {timeout_ms} ms: {exc}", response_status=response.status, **base)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return Outcome.retry(f"reading the response failed: {short(exc)}", response_status=response.status, **base)
    return Answer(
        status=response.status,
        headers=outbound.capped_headers(response.headers),
        text=text,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def basic_auth(username: str, password: str) -> str:
    """An ``Authorization`` value for HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - time.time(), 0.0)


def read_body(response: urllib3.BaseHTTPResponse) -> str:
    """Read at most ``MAX_RESPONSE_READ`` bytes; a fully read response keeps its connection.
    Raises DeadlineExceeded when the attempt's deadline cut the read short."""
    deadline = outbound.current_deadline()
    try:
        data = response.read(MAX_RESPONSE_READ + 1)
    except BaseException as exc:
        response.close()  # a half-read connection cannot be reused
        if deadline is not None and deadline.expired:
            raise DeadlineExceeded(deadline.describe()) from exc
        raise
    if deadline is not None and deadline.expired:
        response.close()
        raise DeadlineExceeded(deadline.describe())
    if len(data) > MAX_RESPONSE_READ:
        response.close()  # do not drain a huge body: drop the connection instead
        data = data[:MAX_RESPONSE_READ]
    else:
        response.release_conn()
    charset = _CHARSET.search(response.headers.get("Content-Type", ""))
    encoding = charset.group(1) if charset else "utf-8"
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", errors="replace")


def ssrf_cause(exc: BaseException) -> BaseException | None:
    """The ``SSRFRefused`` somewhere in the cause chain of ``exc`` (the pinning adapter's
    refusal arrives wrapped in the HTTP library's own exceptions)."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SSRFRefused):
            return current
        current = current.__cause__ or current.__context__
    return None


def short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 500 else text[:500] + "…"
