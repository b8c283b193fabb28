"""GCP Pub/Sub destinations (spec §4).

One ``publish`` per attempt to ``projects/{project_id}/topics/{topic_id}``: data = the event
body, attributes ``event_id``, ``source_id`` (empty when the event has none) and
``destination_id``. The attempt waits for the server's message id up to the destination's
timeout.

Connection: ``endpoint`` (``host:port`` of an emulator, plaintext, no credentials) wins;
otherwise ``PUBSUB_EMULATOR_HOST`` is honoured by the client library; otherwise
``service_account_json`` (a JSON string or object) gives service-account credentials, and
without it the environment's default credentials are used. One publisher client is kept per
destination (per process) and rebuilt when its configuration changes.

Failures: NotFound (unknown topic/project), PermissionDenied, Unauthenticated,
InvalidArgument and unusable credentials are permanent; Unavailable, DeadlineExceeded,
ResourceExhausted, internal errors and time-outs are retryable (the library's own retries are
off: the engine's retry policy applies).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import threading

from destinations.providers.base import (
    ConfigError,
    ConfigField,
    OutboundMessage,
    Outcome,
    Provider,
    register,
    url_errors,
)

_clients: dict[str, tuple[str, object]] = {}
_lock = threading.Lock()


@register
class PubSubProvider(Provider):
    type = "pubsub"
    label = "Google Cloud Pub/Sub"
    description = "Publish each event to a Google Cloud Pub/Sub topic."
    fields = (
        ConfigField("project_id", required=True),
        ConfigField("topic_id", required=True),
        ConfigField("service_account_json", secret=True, kind=(str, dict)),
        ConfigField("endpoint", hosts=True),
    )

    @classmethod
    def clean(cls, config, *, url=""):
        # The service account's token_uri is where the credentials exchange goes: a URL the
        # server connects to, under the same rules as any other target.
        info = config.get("service_account_json")
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except ValueError:
                info = None  # unusable credentials: a permanent failure when sending
        token_uri = info.get("token_uri") if isinstance(info, dict) else None
        if token_uri is not None:
            problems = url_errors(token_uri, ("https", "http")) if isinstance(token_uri, str) else ["Must be a URL."]
            if problems:
                raise ConfigError({"provider_config.service_account_json.token_uri": problems})
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
        except (auth_exc.GoogleAuthError, ValueError, TypeError, KeyError) as exc:
            return Outcome.permanent(f"unusable credentials: {exc}"[:500], **base)
        try:
            future = client.publish(topic, message.body, retry=None, timeout=timeout, **attributes)
            message_id = future.result(timeout=timeout)
        except gexc.NotFound as exc:
            return Outcome.permanent(f"topic not found: {exc.message}"[:500], response_status=404, **base)
        except (gexc.PermissionDenied, gexc.Unauthenticated) as exc:
            return Outcome.permanent(f"not allowed: {exc.message}"[:500], response_status=exc.code, **base)
        except gexc.InvalidArgument as exc:
            return Outcome.permanent(f"invalid message: {exc.message}"[:500], response_status=400, **base)
        except (concurrent.futures.TimeoutError, TimeoutError):
            return Outcome.retry(f"timed out after {destination.timeout_ms} ms", **base)
        except gexc.GoogleAPICallError as exc:
            # Unavailable, DeadlineExceeded, ResourceExhausted, Internal, Aborted…
            return Outcome.retry(f"{type(exc).__name__}: {exc.message}"[:500], response_status=exc.code, **base)
        except auth_exc.GoogleAuthError as exc:
            return Outcome.permanent(f"unusable credentials: {exc}"[:500], **base)
        except Exception as exc:  # noqa: BLE001 - a publisher failure is an attempt failure
            return Outcome.retry(f"publish failed: {exc!r}"[:500], **base)
        return Outcome.success(response_status=200, response_body=json.dumps({"message_id": message_id}), **base)


def _fingerprint(config: dict) -> str:
    parts = {
        "endpoint": config.get("endpoint") or "",
        "emulator": os.environ.get("PUBSUB_EMULATOR_HOST", ""),
        "sa": config.get("service_account_json") or "",
        "pid": os.getpid(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def publisher_for(destination, config: dict):
    """This destination's publisher client (created on first use, reused afterwards)."""
    key = str(destination.pk)
    fingerprint = _fingerprint(config)
    with _lock:
        entry = _clients.get(key)
        if entry is not None and entry[0] == fingerprint:
            return entry[1]
        client = _build(config)
        _clients[key] = (fingerprint, client)
    if entry is not None:
        _stop(entry[1])
    return client


def _build(config: dict):
    from google.cloud import pubsub_v1

    endpoint = config.get("endpoint")
    if endpoint:
        import grpc
        from google.auth.credentials import AnonymousCredentials
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        host = endpoint.split("://", 1)[-1].rstrip("/")
        transport = PublisherGrpcTransport(channel=grpc.insecure_channel(host), credentials=AnonymousCredentials())
        return pubsub_v1.PublisherClient(transport=transport)
    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        return pubsub_v1.PublisherClient()
    info = config.get("service_account_json")
    if info:
        from google.oauth2 import service_account

        if isinstance(info, str):
            info = json.loads(info)
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=["https://www.googleapis.com/auth/pubsub"]
        )
        return pubsub_v1.PublisherClient(credentials=credentials)
    return pubsub_v1.PublisherClient()


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
