"""GCP Pub/Sub destinations (spec §4).

One ``publish`` per attempt to ``projects/{project_id}/topics/{topic_id}``: data = the event
body, attributes ``event_id``, ``source_id`` (empty when the event has none) and
``destination_id``. The attempt waits for the server's message id up to the destination's
timeout.

Connection (every one opened by ``hookstream.outbound``: the host is resolved and checked by
the SSRF guard once, and gRPC connects to exactly that address with the original name as its
authority and TLS server name):

- ``endpoint`` (``host:port`` of an emulator; plaintext, no credentials) wins; otherwise the
  operator's ``PUBSUB_EMULATOR_HOST`` is used the same way;
- otherwise ``service_account_json`` (a JSON string or object) gives service-account
  credentials for ``pubsub.googleapis.com:443``; their token exchange (``token_uri``) goes
  through a session pinned to a checked address;
- a destination with neither is refused, unless the operator lends the server's own
  credentials with ``HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS`` (``google.auth.default``).

One publisher client is kept per destination (per process) and rebuilt when its configuration
changes, or after the service was unavailable (so a moved address is resolved again).

Failures: permanent are a target refused by the SSRF guard, missing or unusable credentials
(a key that cannot be read) and InvalidArgument (the message itself: too large, bad
attributes). Everything else the service answers — NotFound (unknown topic/project),
PermissionDenied, Unauthenticated, a token exchange refused, Unavailable, DeadlineExceeded,
ResourceExhausted, internal errors — and a name that does not resolve or a time-out is retried
by the destination's policy, as for HTTP (spec §3): the topic or the permission may be fixed
within the retry window. The library's own retries are off.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import threading
from urllib.parse import urlsplit

from django.conf import settings

from destinations.providers.base import (
    ConfigError,
    ConfigField,
    OutboundMessage,
    Outcome,
    Provider,
    register,
    url_errors,
)
from hookstream import outbound
from hookstream.ssrf import SSRFRefused

# Where publishes go without an endpoint (or an emulator).
GOOGLE_ENDPOINT = ("pubsub.googleapis.com", 443)
SCOPES = ["https://www.googleapis.com/auth/pubsub"]
NO_CREDENTIALS = (
    "service_account_json is required: this server does not lend its own Google credentials to "
    "destinations (HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS is off); set endpoint for an emulator"
)

_clients: dict[str, tuple[str, object]] = {}
_lock = threading.Lock()


@register
class PubSubProvider(Provider):
    type = "pubsub"
    label = "Google Cloud Pub/Sub"
    description = "Publish each event to a Google Cloud Pub/Sub topic."
    fields = (
        ConfigField("project_id", required=True, help="Google Cloud project id"),
        ConfigField("topic_id", required=True, help="topic id within the project"),
        ConfigField(
            "service_account_json",
            secret=True,
            kind=(str, dict),
            help=(
                "service account key (JSON text or object); "
                "required unless endpoint is set or the operator lends its own"
            ),
        ),
        ConfigField("endpoint", hosts=True, help="host:port of a Pub/Sub emulator (plaintext, no credentials)"),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        errors = {}
        endpoint = config.get("endpoint")
        if endpoint:
            error = _endpoint_error(endpoint)
            if error:
                errors["provider_config.endpoint"] = [error]
        account = config.get("service_account_json")
        if account:
            error = _service_account_error(account)
            if error:
                errors["provider_config.service_account_json"] = [error]
        elif not endpoint and not _emulator_host() and not settings.HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS:
            errors["provider_config.service_account_json"] = [
                "Required: this server does not lend its own Google credentials to destinations "
                "(HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS is off). For an emulator, set endpoint."
            ]
        if errors:
            raise ConfigError(errors)
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc

        config = destination.provider_config or {}
        topic = f"projects/{config.get('project_id')}/topics/{config.get('topic_id')}"
        attributes = {
            "event_id": message.event_id,
            "source_id": message.source_id or "",
            "destination_id": str(destination.pk),
        }
        base = {
            "request_url": topic,
            "request_method": "PUBLISH",
            "request_headers": dict(attributes),
            "request_body_size": len(message.body),
        }
        timeout = max(destination.timeout_ms or 30000, 1) / 1000.0
        try:
            client = publisher_for(destination, config)
        except SSRFRefused as exc:
            return Outcome.permanent(f"SSRF guard: {exc}", **base)
        except Unusable as exc:
            return Outcome.permanent(str(exc)[:500], **base)
        except (auth_exc.GoogleAuthError, ValueError, TypeError, KeyError) as exc:
            return Outcome.permanent(f"unusable credentials: {exc}"[:500], **base)
        except OSError as exc:  # the name does not resolve
            return Outcome.retry(f"connection error: {exc}"[:500], **base)
        try:
            future = client.publish(topic, message.body, retry=None, timeout=timeout, **attributes)
            message_id = future.result(timeout=timeout)
        except gexc.NotFound as exc:
            return Outcome.retry(f"topic not found: {exc.message}"[:500], response_status=404, **base)
        except (gexc.PermissionDenied, gexc.Unauthenticated) as exc:
            return Outcome.retry(f"not allowed: {exc.message}"[:500], response_status=exc.code, **base)
        except gexc.InvalidArgument as exc:
            return Outcome.permanent(f"invalid message: {exc.message}"[:500], response_status=400, **base)
        except (concurrent.futures.TimeoutError, TimeoutError):
            return Outcome.retry(f"timed out after {destination.timeout_ms} ms", **base)
        except gexc.ServiceUnavailable as exc:
            forget(destination.pk)  # the next attempt resolves the host again
            return Outcome.retry(f"{type(exc).__name__}: {exc.message}"[:500], response_status=exc.code, **base)
        except gexc.GoogleAPICallError as exc:
            # DeadlineExceeded, ResourceExhausted, Internal, Aborted…
            return Outcome.retry(f"{type(exc).__name__}: {exc.message}"[:500], response_status=exc.code, **base)
        except auth_exc.GoogleAuthError as exc:  # the token exchange failed or was refused
            return Outcome.retry(f"credentials refused: {exc}"[:500], **base)
        except Exception as exc:  # noqa: BLE001 - a publisher failure is an attempt failure
            return Outcome.retry(f"publish failed: {exc!r}"[:500], **base)
        return Outcome.success(response_status=200, response_body=json.dumps({"message_id": message_id}), **base)


class Unusable(Exception):
    """A configuration that can never publish (a permanent failure with this message)."""


def _emulator_host() -> str:
    return os.environ.get("PUBSUB_EMULATOR_HOST", "")


def _endpoint_error(endpoint: str) -> str | None:
    try:
        host, _port = outbound.split_host_port(endpoint, default_port=443)
    except ValueError:
        return "Must be host:port (the address of a Pub/Sub emulator)."
    return outbound.literal_host_error(host)


def _service_account_info(account) -> dict:
    """The service account key as a dict; raises ValueError."""
    info = json.loads(account) if isinstance(account, str) else account
    if not isinstance(info, dict):
        raise ValueError("not a JSON object")
    return info


def _service_account_error(account) -> str | None:
    """Why a service account key is refused at validation: a ``token_uri`` that is not an
    http(s) URL or names a private address. (A key that is not JSON is accepted as before and
    fails at delivery as unusable credentials.)"""
    try:
        info = _service_account_info(account)
    except ValueError:
        return None
    token_uri = info.get("token_uri")
    if token_uri is None:
        return None
    problems = url_errors(token_uri, ("https", "http")) if isinstance(token_uri, str) else ["Must be an https:// URL."]
    return f"token_uri: {problems[0]}" if problems else None


def _fingerprint(config: dict) -> str:
    parts = {
        "endpoint": config.get("endpoint") or "",
        "emulator": _emulator_host(),
        "sa": config.get("service_account_json") or "",
        "ambient": settings.HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS,
        # A channel pinned while private networks were allowed is not kept once they are not.
        "private": settings.HOOKSTREAM_ALLOW_PRIVATE_NETWORKS,
        "pid": os.getpid(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def publisher_for(destination, config: dict):
    """This destination's publisher client (created on first use, reused afterwards).

    Built outside the lock: building resolves a host name, which must not hold up the
    other destinations' sends."""
    key = str(destination.pk)
    fingerprint = _fingerprint(config)
    with _lock:
        entry = _clients.get(key)
    if entry is not None and entry[0] == fingerprint:
        return entry[1]
    client = _build(config)
    with _lock:
        current = _clients.get(key)
        if current is not None and current[0] == fingerprint:
            stale, client = client, current[1]  # another thread built it first
        else:
            stale = current[1] if current is not None else None
            _clients[key] = (fingerprint, client)
    if stale is not None:
        _stop(stale)
    return client


def _build(config: dict):
    """A publisher client whose one channel ``hookstream.outbound`` opened to a checked address.

    1. An emulator (``endpoint``, else ``PUBSUB_EMULATOR_HOST``): plaintext, anonymous.
    2. A service account: its ``token_uri`` host is checked first (the exchange itself goes
       through a pinned session), then TLS to the checked address of pubsub.googleapis.com.
    3. No credentials: the server's own (``google.auth.default``) only when the operator
       opted in; otherwise :class:`Unusable`.
    Raises SSRFRefused, OSError, Unusable and google-auth's errors.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    endpoint = config.get("endpoint") or _emulator_host()
    if endpoint:
        try:
            host, port = outbound.split_host_port(endpoint, default_port=443)
        except ValueError as exc:
            raise Unusable(f"invalid endpoint: {exc}") from None
        channel = outbound.grpc_channel(outbound.check_target(host, port))
        transport = PublisherGrpcTransport(channel=channel, credentials=AnonymousCredentials())
        return pubsub_v1.PublisherClient(transport=transport)
    account = config.get("service_account_json")
    if account:
        from google.oauth2 import service_account

        info = _service_account_info(account)
        credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        token_uri = urlsplit(info["token_uri"])  # present: the library refuses a key without it
        outbound.check_target(token_uri.hostname or "", token_uri.port or (443 if token_uri.scheme == "https" else 80))
        auth_request = outbound.google_auth_request()
    elif settings.HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS:
        import google.auth
        from google.auth.transport.requests import Request

        credentials, _project = google.auth.default(scopes=SCOPES)
        # The operator's own credentials refresh from the operator's endpoints (often the
        # metadata server, which the guard refuses): the library's own transport.
        auth_request = Request()
    else:
        raise Unusable(NO_CREDENTIALS)
    channel = outbound.grpc_channel(
        outbound.check_target(*GOOGLE_ENDPOINT), credentials=credentials, auth_request=auth_request
    )
    return pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=channel))


def _stop(client) -> None:
    try:
        client.stop()
    except Exception:  # noqa: BLE001 - a stale client must not fail a send
        pass


def forget(destination_id) -> None:
    """Drop (and stop) a destination's cached client."""
    with _lock:
        entry = _clients.pop(str(destination_id), None)
    if entry is not None:
        _stop(entry[1])
