"""Outbound connections: the one place where the workers connect to a tenant's target.

Every connection a provider opens goes through here, so one egress policy
(``hookstream.ssrf``) and one bound on the work of an attempt apply to all of them:

* :func:`request` — HTTP(S) on one pooled keep-alive urllib3 pool per target per worker thread
  (the http, kafka and rabbitmq providers, through ``destinations.providers.transport``);
* :func:`route_botocore` — boto3 clients (sqs, s3, eventbridge) send through :func:`request`
  too, via botocore's ``before-send`` hook;
* :func:`connect` — a checked, pinned TCP socket (the WebSocket provider);
* :func:`attempt_deadline` — the wall-clock limit of one attempt (``timeout_ms``): every
  socket used during the attempt is shut down when it passes, so a receiver that drips one
  byte a second cannot hold a worker beyond it;
* :func:`capped_headers` — response headers as an attempt row may keep them;
* :func:`amqp_connect`, :func:`grpc_channel`, :func:`google_auth_request` — pika (RabbitMQ
  over AMQP), gRPC (Pub/Sub) and the google-auth token exchange (a service account's
  ``token_uri``);
* :func:`tls_context` / :func:`root_certificates` — what every TLS connection opened here
  trusts: certifi's CAs, the system's, and the operator's ``HOOKSTREAM_CA_BUNDLE``.

Why pin: checking a name and then letting the HTTP library resolve it again leaves a window
in which a DNS answer can change from a public address to a private one (DNS rebinding).
:class:`PinnedAdapter` resolves the host once (``hookstream.ssrf.resolve_and_check``), then
opens the TCP connection to exactly that address while keeping the name for the ``Host``
header, TLS SNI and certificate verification. Pools are keyed by (scheme, host, port,
address), so a pooled keep-alive connection is only reused for the address it was opened to.

The rule for every transport: resolve the tenant's host once with the SSRF guard
(:func:`hookstream.ssrf.resolve_and_check`), then hand the client library exactly the checked
address, keeping the name only where the protocol needs it (TLS SNI and certificate checks,
the HTTP/2 ``:authority``, the ``Host`` header). A provider never gives a tenant's host name to
a client library: a library that resolves it again could get a different, private, answer
(DNS rebinding), and a refused target must be refused before any socket is opened, so that
the error never depends on what listens there.

``SSRFRefused`` (a permanent failure) and ``OSError`` (the name does not resolve) come out of
every function here that takes a target.
"""

from __future__ import annotations

import base64
import heapq
import ipaddress
import itertools
import os
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import requests
import urllib3
from botocore import exceptions as botocore_exceptions
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hookstream.ssrf import SSRFRefused, literal_address_error, resolve_and_check

MAX_POOLS = 256
POOL_MAXSIZE = 16


# --- what TLS trusts ------------------------------------------------------------------------

_tls_contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
_tls_lock = threading.Lock()


def ca_bundle() -> str:
    """The operator's extra CA file (``HOOKSTREAM_CA_BUNDLE``), or ""."""
    return getattr(settings, "HOOKSTREAM_CA_BUNDLE", "") or ""


def tls_context(*, bounded: bool = False) -> ssl.SSLContext:
    """The client TLS context of every outbound connection: the certificate must chain to one
    of certifi's CAs, the system's, or the operator's ``HOOKSTREAM_CA_BUNDLE``, and name the
    host. Built once per bundle and shared (a built context is safe to use from any thread).

    The environment's ``REQUESTS_CA_BUNDLE`` is not read (the client ignores the environment,
    proxies included); ``HOOKSTREAM_CA_BUNDLE`` is the one way to add a CA. ``bounded``: the
    sockets it wraps count what they read (:func:`wrap_tls`)."""
    bundle = ca_bundle()
    key = (bundle, bounded)
    with _tls_lock:
        context = _tls_contexts.get(key)
        if context is None:
            context = ssl.create_default_context()  # the system's CAs, CERT_REQUIRED, host names checked
            context.load_verify_locations(cafile=certifi.where())
            if bundle:
                context.load_verify_locations(cafile=bundle)
            if bounded:
                context.sslsocket_class = BoundedSSLSocket
            _tls_contexts[key] = context
    return context


def root_certificates() -> bytes | None:
    """PEM roots for a gRPC channel: certifi's and the operator's bundle, or None without a
    bundle (gRPC's own roots then)."""
    bundle = ca_bundle()
    if not bundle:
        return None
    with open(certifi.where(), "rb") as usual, open(bundle, "rb") as extra:
        return usual.read() + b"\n" + extra.read()


def _connect_to(conn: HTTPConnection, address: str | None, connect: Callable[[], socket.socket]) -> socket.socket:
    """Run urllib3's ``connect`` with ``address`` in place of the name it would resolve.

    urllib3 connects to ``_dns_host``; the checked address is swapped in only for the connect
    call, so ``host`` (Host header, SNI, certificate check) stays the name."""
    if not address:
        sock = connect()
    else:
        name = conn._dns_host
        conn._dns_host = address
        try:
            sock = connect()
        finally:
            conn._dns_host = name
    watch(sock)
    return sock


class PinnedHTTPConnection(HTTPConnection):
    pinned_address: str | None = None

    def _new_conn(self) -> socket.socket:
        return _connect_to(self, self.pinned_address, super()._new_conn)


class PinnedHTTPSConnection(HTTPSConnection):
    pinned_address: str | None = None

    def _new_conn(self) -> socket.socket:
        return _connect_to(self, self.pinned_address, super()._new_conn)


class PinnedHTTPConnectionPool(HTTPConnectionPool):
    """urllib3's pool, pinned: every new connection goes to the pinned address, and a
    kept-alive one taken from the pool is bound by this attempt's deadline too."""

    ConnectionCls: Any = PinnedHTTPConnection
    pinned_address: str

    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pinned_address = pinned_address

    def _new_conn(self) -> Any:
        conn = super()._new_conn()
        assert isinstance(conn, PinnedHTTPConnection | PinnedHTTPSConnection)
        conn.pinned_address = self.pinned_address
        return conn

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            watch(sock)
        return conn


class PinnedHTTPSConnectionPool(PinnedHTTPConnectionPool, HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """An adapter that resolves, checks and pins every connection (never through a proxy)."""

    def __init__(self) -> None:
        super().__init__(pool_maxsize=POOL_MAXSIZE)
        self._pools: OrderedDict[tuple, HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        parts = urlsplit(request.url)
        scheme = (parts.scheme or "http").lower()
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname or ""
        address = resolve_and_check(host, port)  # raises SSRFRefused / OSError
        # Certificates are always verified, against tls_context() (whatever ``verify`` says).
        bundle = ca_bundle() if scheme == "https" else ""
        key = (scheme, host, port, address, bundle)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            cls = PinnedHTTPSConnectionPool if scheme == "https" else PinnedHTTPConnectionPool
            # TLS keywords only mean something to HTTPS pools (urllib3's PoolManager drops them too).
            kwargs = {"cert_reqs": "CERT_REQUIRED", "ssl_context": tls_context()} if scheme == "https" else {}
            pool = cls(host, port, maxsize=POOL_MAXSIZE, block=False, pinned_address=address, **kwargs)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                _, old = self._pools.popitem(last=False)
                old.close()
            return pool

    def cert_verify(self, conn, url, verify, cert):
        """Leave the pool's TLS as built: requests would point it at its own CA file, which
        urllib3 would then load into the shared context on every new connection."""

    def close(self):
        super().close()
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


_local = threading.local()


class _Target:
    """What requests' pool-key helpers read from a request: its URL."""

    def __init__(self, url: str):
        self.url = url


def request(
    method: str, url: str, *, body: Any, headers: dict[str, str], connect_timeout: float, read_timeout: float
) -> urllib3.BaseHTTPResponse:
    """One request straight on this thread's pinned urllib3 pool, without ``requests``' layers.

    The same connection, pinning and pools as :func:`session` (SSRF check and pinned address
    from :class:`PinnedAdapter`), a third of the client CPU per request: session merging,
    cookies, hooks and response wrapping are what a delivery does not need. No redirects,
    no urllib3 retries (the engine retries). The response is not preloaded: read it, then
    ``release_conn()`` to keep the connection, or ``close()`` to drop it.

    Raises ``SSRFRefused``, ``requests.exceptions.InvalidURL``/``InvalidSchema`` for a URL
    that cannot be sent, and urllib3's exceptions (or ``OSError``) for network failures.
    """
    url = requote_uri(url)
    parts = urlsplit(url)
    if not parts.hostname:
        raise requests.exceptions.InvalidURL(f"Invalid URL {url!r}: no host supplied")
    adapter = session().get_adapter(url)  # InvalidSchema for anything but http(s)
    assert isinstance(adapter, PinnedAdapter)
    pool = adapter.get_connection_with_tls_context(_Target(url), verify=True)
    if parts.username is not None and not any(name.lower() == "authorization" for name in headers):
        # As requests does: credentials in the URL become basic auth, never part of the request line.
        headers = {**headers, "Authorization": _basic_auth(unquote(parts.username), unquote(parts.password or ""))}
    if not any(name.lower() == "accept" for name in headers):
        headers = {**headers, "Accept": "*/*"}  # what requests sent by default
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = current_deadline()
    if deadline is not None:
        remaining = deadline.check()
        connect_timeout, read_timeout = min(connect_timeout, remaining), min(read_timeout, remaining)
    try:
        return pool.urlopen(
            method,
            path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            preload_content=False,
        )
    except Exception as exc:
        if deadline is not None and deadline.expired:
            raise DeadlineExceeded(deadline.describe()) from exc
        raise


def _basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def session() -> requests.Session:
    """This thread's session (created on first use, kept for the life of the thread)."""
    current = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        # Environment proxies would bypass the pinning: never use them.
        current.trust_env = False
        adapter = PinnedAdapter()
        current.mount("http://", adapter)
        current.mount("https://", adapter)
        _local.session = current
    return current


# --- the deadline of an attempt ------------------------------------------------------------


class DeadlineExceeded(TimeoutError):
    """The attempt ran past its wall-clock deadline (``timeout_ms``)."""


class Deadline:
    """The wall-clock limit of one attempt. Sockets :meth:`watch`-ed while it runs are shut
    down when it passes, which ends any read or write blocked on them at once.

    A watched socket is a duplicate of the connection's descriptor, closed when the attempt
    ends: shutting it down ends the connection, closing it does not, and the watchdog never
    touches a descriptor number the process may have reused for something else.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.0)

    def check(self) -> float:
        """The seconds left; DeadlineExceeded when none are."""
        remaining = self.remaining()
        if remaining <= 0 or self.expired:
            self.expired = True
            raise DeadlineExceeded(self.describe())
        return remaining

    def describe(self) -> str:
        return f"the attempt exceeded its deadline of {round(self.seconds * 1000)} ms"

    def watch(self, sock: socket.socket) -> None:
        try:
            duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        except (OSError, ValueError):
            return  # already closed
        with self._lock:
            if self._finished:
                duplicate.close()
                return
            self._sockets.append(duplicate)
            if self.expired:
                _shutdown(duplicate)

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One thread per process that expires deadlines when they pass (started on first use,
    and again in a forked child)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._condition = threading.Condition()
        self._counter = itertools.count()
        self._pid: int | None = None

    def add(self, deadline: Deadline) -> None:
        with self._condition:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._heap = []
                threading.Thread(target=self._run, name="hookstream-deadlines", daemon=True).start()
            heapq.heappush(self._heap, (deadline.at, next(self._counter), deadline))
            if self._heap[0][2] is deadline:
                self._condition.notify()

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].expire()
                self._condition.wait(self._heap[0][0] - now if self._heap else None)


_watchdog = _Watchdog()


@contextmanager
def attempt_deadline(timeout_ms: int | None) -> Iterator[Deadline]:
    """Bound everything this thread does on the network inside the block to ``timeout_ms``
    of wall-clock time (default 30 s)."""
    deadline = Deadline(max(timeout_ms or 30000, 1) / 1000.0)
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    _watchdog.add(deadline)
    try:
        yield deadline
    finally:
        _local.deadline = previous
        deadline.finish()


def current_deadline() -> Deadline | None:
    return getattr(_local, "deadline", None)


def watch(sock: socket.socket) -> None:
    """Bound ``sock`` by the current attempt's deadline (if any)."""
    deadline = current_deadline()
    if deadline is not None:
        deadline.watch(sock)


class AnswerTooLarge(OSError):
    """The other side sent more than the attempt reads."""


class _Bounded:
    """Counts what ``recv`` returns and refuses more than ``read_budget`` bytes in all."""

    read_budget: int | None = None

    def _spend(self, data: bytes) -> bytes:
        if self.read_budget is not None:
            self.read_budget -= len(data)
            if self.read_budget < 0:
                raise AnswerTooLarge("the server sent more than this attempt reads; connection dropped")
        return data


class BoundedSocket(_Bounded, socket.socket):
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._spend(super().recv(bufsize, flags))


class BoundedSSLSocket(_Bounded, ssl.SSLSocket):
    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        return self._spend(super().recv(buflen, flags))


def connect(host: str, port: int, *, timeout: float, max_read: int | None = None) -> socket.socket:
    """A TCP connection to ``host``: resolved once, checked by the egress policy, connected to
    exactly the checked address, bound by the current deadline, and reading at most
    ``max_read`` bytes. Raises SSRFRefused, DeadlineExceeded or OSError."""
    deadline = current_deadline()
    if deadline is not None:
        timeout = min(timeout, deadline.check())
    address = resolve_and_check(host, port)
    raw = socket.create_connection((address, port), timeout=timeout)
    watch(raw)
    sock = BoundedSocket(raw.family, raw.type, raw.proto, fileno=raw.detach())
    sock.settimeout(timeout)
    sock.read_budget = max_read
    return sock


def wrap_tls(sock: socket.socket, hostname: str) -> socket.socket:
    """TLS over a :func:`connect` socket, verified for ``hostname`` (SNI too); the read
    budget carries over."""
    tls = tls_context(bounded=True).wrap_socket(sock, server_hostname=hostname)
    assert isinstance(tls, BoundedSSLSocket)
    tls.read_budget = getattr(sock, "read_budget", None)
    return tls


# --- what an attempt row keeps of an answer --------------------------------------------------

MAX_STORED_HEADERS = 50
MAX_STORED_HEADER_BYTES = 8 * 1024
MAX_STORED_HEADER_VALUE = 1024


def capped_headers(headers: Iterable[tuple[str, str]] | Any) -> dict[str, str]:
    """Response headers as an attempt row keeps them: at most ``MAX_STORED_HEADERS`` names,
    each value cut at ``MAX_STORED_HEADER_VALUE`` characters, ``MAX_STORED_HEADER_BYTES`` in
    all. (A receiver can answer ~6 MB of headers; the row is not the place for them.)"""
    items = headers.items() if hasattr(headers, "items") else headers
    kept: dict[str, str] = {}
    size = 0
    for name, value in items:
        name, value = str(name)[:MAX_STORED_HEADER_VALUE], str(value)
        if len(value) > MAX_STORED_HEADER_VALUE:
            value = value[:MAX_STORED_HEADER_VALUE] + "…"
        size += len(name) + len(value)
        if len(kept) >= MAX_STORED_HEADERS or size > MAX_STORED_HEADER_BYTES:
            break
        kept[name] = value
    return kept


# --- boto3 --------------------------------------------------------------------------------

# AWS answers to a send (SendMessage, PutObject, PutEvents) are a few hundred bytes.
MAX_AWS_RESPONSE_READ = 256 * 1024


class _ReadBody:
    """The already-read body of an answer, shaped as botocore reads a raw response."""

    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_args: Any) -> bytes:
        data, self._data = self._data, b""
        return data

    def close(self) -> None:
        self._data = b""


def _botocore_send(**kwargs: Any) -> AWSResponse:
    """Send a botocore request through :func:`request` (checked, pinned, pooled, bounded by
    the deadline) instead of botocore's own connection pool; botocore then parses the answer.
    Failures are raised as botocore's own exceptions so its callers classify them as usual."""
    prepared: AWSPreparedRequest = kwargs["request"]
    url = prepared.url or ""
    headers = {
        str(name): value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for name, value in prepared.headers.items()
        if str(name).lower() != "expect"  # no 100-continue dance: the body follows the headers
    }
    timeout = 30.0
    deadline = current_deadline()
    try:
        if deadline is not None:
            timeout = deadline.check()
        response = request(
            prepared.method or "POST",
            url,
            body=prepared.body,
            headers=headers,
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
        )
        try:
            data = response.read(MAX_AWS_RESPONSE_READ + 1)
        finally:
            if deadline is not None and deadline.expired:
                response.close()
        if deadline is not None and deadline.expired:
            raise DeadlineExceeded(deadline.describe())
        if len(data) > MAX_AWS_RESPONSE_READ:
            response.close()
            raise botocore_exceptions.ConnectionClosedError(endpoint_url=url)
        response.release_conn()
    except (DeadlineExceeded, urllib3.exceptions.ReadTimeoutError) as exc:
        raise botocore_exceptions.ReadTimeoutError(endpoint_url=url, error=exc) from exc
    except urllib3.exceptions.ConnectTimeoutError as exc:
        raise botocore_exceptions.ConnectTimeoutError(endpoint_url=url, error=exc) from exc
    except urllib3.exceptions.ProtocolError as exc:
        raise botocore_exceptions.ConnectionClosedError(endpoint_url=url) from exc
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException) as exc:
        raise botocore_exceptions.EndpointConnectionError(endpoint_url=url, error=exc) from exc
    except OSError as exc:
        if isinstance(exc, SSRFRefused):
            raise
        raise botocore_exceptions.EndpointConnectionError(endpoint_url=url, error=exc) from exc
    return AWSResponse(url, response.status, dict(response.headers.items()), _ReadBody(data))


def route_botocore(client: Any) -> None:
    """Make a boto3 client send every request through :func:`request`."""
    client.meta.events.register("before-send", _botocore_send)


# --- AMQP, gRPC and the google-auth token exchange ---------------------------------------


@dataclass(frozen=True)
class CheckedTarget:
    """A host the guard has resolved and accepted: connect to ``address``, speak to ``host``."""

    host: str  # the name as configured: TLS server name, authority, Host header
    port: int
    address: str  # the checked address: the only one ever connected to

    def authority(self, default_port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default_port else f"{host}:{self.port}"


def check_target(host: str, port: int) -> CheckedTarget:
    """Resolve ``host`` once and check the address; raises SSRFRefused or OSError."""
    host = host.strip("[]")
    return CheckedTarget(host=host, port=port, address=resolve_and_check(host, port))


def split_host_port(value: str, *, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` (a ``scheme://`` prefix and a trailing ``/``
    are ignored) as (host, port); raises ValueError."""
    text = value.strip().split("://", 1)[-1].rstrip("/")
    if not text or "/" in text or "@" in text:
        raise ValueError(f"{value!r} is not host:port")
    parts = urlsplit(f"//{text}")
    port = parts.port  # ValueError for a port out of range or not a number
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    return parts.hostname, port or default_port


def literal_host_error(host: str) -> str | None:
    """Why a literal address (or ``localhost``) is refused, for validation; None for a name
    (names are checked on their resolved address at connect time)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if ":" in host:
            host = f"[{host}]"
    return literal_address_error(f"tcp://{host}/")


# --- AMQP (pika) ------------------------------------------------------------------------


def amqp_connect(url: str, **parameters):
    """A ``pika.BlockingConnection`` to ``amqp://host:port`` or ``amqps://host:port``.

    pika gets the checked address as its host, so it never resolves the name; for ``amqps``
    TLS verifies the certificate against (and sends SNI for) the URL's host name.
    ``parameters`` are the other ``pika.ConnectionParameters`` (credentials, time-outs…).
    Raises ValueError for a URL that is not AMQP, SSRFRefused, OSError and pika's errors.
    """
    import pika

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ValueError("must be an amqp:// or amqps:// URL with a host")
    tls = scheme == "amqps"
    target = check_target(parts.hostname, parts.port or (5671 if tls else 5672))
    ssl_options = pika.SSLOptions(tls_context(), server_hostname=target.host) if tls else None
    params = pika.ConnectionParameters(host=target.address, port=target.port, ssl_options=ssl_options, **parameters)
    return pika.BlockingConnection(params)


# --- gRPC ---------------------------------------------------------------------------------


def grpc_channel(target: CheckedTarget, *, credentials=None, auth_request=None):
    """A gRPC channel to exactly ``target.address``, speaking to ``target.host``.

    Without ``credentials``: plaintext (an emulator). With them: TLS whose server name
    (SNI and certificate check) is ``target.host``, and call credentials from google-auth
    that refresh through ``auth_request``. Proxies from the environment are off: the
    connection goes to the checked address and nowhere else.
    """
    import grpc

    if ":" in target.address:
        address = f"ipv6:[{target.address}]:{target.port}"
    else:
        address = f"ipv4:{target.address}:{target.port}"
    options: list[tuple[str, str | int]] = [
        ("grpc.enable_http_proxy", 0),
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", -1),
        ("grpc.keepalive_time_ms", 30000),
    ]
    if credentials is None:
        return grpc.insecure_channel(address, options=[*options, ("grpc.default_authority", target.authority())])
    from google.auth.transport import grpc as google_grpc

    options += [
        ("grpc.default_authority", target.authority(default_port=443)),
        ("grpc.ssl_target_name_override", target.host),
    ]
    roots = root_certificates()
    ssl_credentials = grpc.ssl_channel_credentials(root_certificates=roots) if roots else None
    return google_grpc.secure_authorized_channel(
        credentials, auth_request, address, ssl_credentials=ssl_credentials, options=options
    )


# --- google-auth token exchange ------------------------------------------------------------


def pinned_session() -> requests.Session:
    """A requests session whose every connection is resolved, checked and pinned."""
    session = requests.Session()
    session.trust_env = False  # environment proxies would bypass the pinning
    adapter = PinnedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def google_auth_request():
    """A google-auth transport whose token exchanges (``token_uri``) go through
    :func:`pinned_session`."""
    from google.auth.transport.requests import Request

    return Request(session=pinned_session())
