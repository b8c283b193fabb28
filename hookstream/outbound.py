"""Outbound connections that are not plain HTTP requests: AMQP (pika), gRPC (Pub/Sub) and the
google-auth token exchange.

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

import ipaddress
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hookstream.ssrf import literal_address_error, resolve_and_check


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
    ssl_options = pika.SSLOptions(ssl.create_default_context(), server_hostname=target.host) if tls else None
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
    return google_grpc.secure_authorized_channel(credentials, auth_request, address, options=options)


# --- google-auth token exchange ------------------------------------------------------------


class PinnedTokenAdapter(HTTPAdapter):
    """A requests adapter that resolves and checks each request's host and connects to exactly
    that address, keeping the name for ``Host``, SNI and the certificate check. One fresh
    connection per request and never a proxy: token exchanges are rare (about once an hour).

    (The same pinning as the workers' HTTP client; the two can share one adapter.)
    """

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        parts = urlsplit(request.url)
        https = parts.scheme.lower() == "https"
        target = check_target(parts.hostname or "", parts.port or (443 if https else 80))
        if not https:
            return HTTPConnectionPool(target.address, target.port, maxsize=1)
        _host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        return HTTPSConnectionPool(
            target.address,
            target.port,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            **pool_kwargs,
        )

    def add_headers(self, request, **kwargs):
        # urllib3 would name the pool's host (the address): name the URL's host instead.
        request.headers["Host"] = urlsplit(request.url).netloc.rpartition("@")[2]


def pinned_session() -> requests.Session:
    """A requests session whose every connection is resolved, checked and pinned."""
    session = requests.Session()
    session.trust_env = False  # environment proxies would bypass the pinning
    adapter = PinnedTokenAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def google_auth_request():
    """A google-auth transport whose token exchanges (``token_uri``) go through
    :func:`pinned_session`."""
    from google.auth.transport.requests import Request

    return Request(session=pinned_session())
