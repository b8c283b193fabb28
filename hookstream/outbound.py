"""The outbound HTTP client of the workers: one pooled keep-alive ``requests.Session`` per
worker thread, with every connection pinned to an address the SSRF guard has checked.

Why pin: checking a name and then letting the HTTP library resolve it again leaves a window
in which a DNS answer can change from a public address to a private one (DNS rebinding).
:class:`PinnedAdapter` resolves the host once (``hookstream.ssrf.resolve_and_check``), then
opens the TCP connection to exactly that address while keeping the name for the ``Host``
header, TLS SNI and certificate verification. Pools are keyed by (scheme, host, port,
address), so a pooled keep-alive connection is only reused for the address it was opened to.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hookstream.ssrf import resolve_and_check

MAX_POOLS = 256
POOL_MAXSIZE = 16


def _connect_to(conn: HTTPConnection, address: str | None, connect: Callable[[], socket.socket]) -> socket.socket:
    """Run urllib3's ``connect`` with ``address`` in place of the name it would resolve.

    urllib3 connects to ``_dns_host``; the checked address is swapped in only for the connect
    call, so ``host`` (Host header, SNI, certificate check) stays the name."""
    if not address:
        return connect()
    name = conn._dns_host
    conn._dns_host = address
    try:
        return connect()
    finally:
        conn._dns_host = name


class PinnedHTTPConnection(HTTPConnection):
    pinned_address: str | None = None

    def _new_conn(self) -> socket.socket:
        return _connect_to(self, self.pinned_address, super()._new_conn)


class PinnedHTTPSConnection(HTTPSConnection):
    pinned_address: str | None = None

    def _new_conn(self) -> socket.socket:
        return _connect_to(self, self.pinned_address, super()._new_conn)


class PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection

    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pinned_address = pinned_address

    def _new_conn(self) -> PinnedHTTPConnection:
        conn = super()._new_conn()
        assert isinstance(conn, PinnedHTTPConnection)
        conn.pinned_address = self.pinned_address
        return conn


class PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection

    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pinned_address = pinned_address

    def _new_conn(self) -> PinnedHTTPSConnection:
        conn = super()._new_conn()
        assert isinstance(conn, PinnedHTTPSConnection)
        conn.pinned_address = self.pinned_address
        return conn


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
        _host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        key = (scheme, host, port, address, tuple(sorted((k, str(v)) for k, v in pool_kwargs.items())))
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            cls = PinnedHTTPSConnectionPool if scheme == "https" else PinnedHTTPConnectionPool
            # TLS keywords only mean something to HTTPS pools (urllib3's PoolManager drops them too).
            kwargs = pool_kwargs if scheme == "https" else {}
            pool = cls(host, port, maxsize=POOL_MAXSIZE, block=False, pinned_address=address, **kwargs)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                _, old = self._pools.popitem(last=False)
                old.close()
            return pool

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
    method: str, url: str, *, body: bytes, headers: dict[str, str], connect_timeout: float, read_timeout: float
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
