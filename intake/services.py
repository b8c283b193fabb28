"""Writes of intake: sources, connections, topics and subscriptions; storing events.

Storing an event received at a source or published to a topic is half of the work: the
other half, creating its deliveries in the same transaction, is ``deliveries.fanout``'s,
which calls the ``*_event_store`` functions here.

Validation of a single field's shape is the serializers' job; rules that need the stored
row or another row (slug taken, destination of the same organization, the combination of
verification type and secret) are checked here and raised as Django ``ValidationError``
(400) or ``Conflict`` (409).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils.text import slugify

from destinations.models import Destination
from hookstream import crypto, stream_bus
from hookstream.errors import Conflict
from hookstream.ids import new_id
from hookstream.jsonsafe import storable_loads
from hookstream.models import Organization
from intake import filters, schemas, signals, transforms
from intake.models import (
    Connection,
    DedupKey,
    DedupStatus,
    DedupStrategy,
    Event,
    EventVerificationStatus,
    SchemaStatus,
    Source,
    Subscription,
    Topic,
    VerificationType,
)
from intake.source_templates import source_template
from intake.verification import ecdsa_public_key_error, parse_networks, standard_webhooks_secret_error

logger = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# Request headers never stored with a published event: they carry the publisher's credentials.
CREDENTIAL_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization"}


# --- sources ---------------------------------------------------------------------------------


def _free_slug(model, *, organization: Organization, name: str, fallback: str) -> str:
    """A free slug made from the name (``stripe``, then ``stripe-2``…)."""
    base = slugify(name).replace("_", "-")[:90].strip("-") or fallback
    taken = set(model.objects.filter(organization=organization, slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _save_or_409(instance, what: str) -> None:
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise Conflict(f"A {what} with slug {instance.slug!r} already exists in this organization.") from None


_SOURCE_PLAIN_FIELDS = (
    "template",
    "name",
    "slug",
    "description",
    "verification_type",
    "verification_header",
    "verification_prefix",
    "dedup_enabled",
    "dedup_strategy",
    "dedup_field",
    "dedup_window_seconds",
    "ip_allowlist",
    "ip_denylist",
    "schema",
    "schema_mode",
    "status",
)


_SECRET_CHECKS: dict[str, Callable[[str], str | None]] = {
    VerificationType.STANDARD_WEBHOOKS: standard_webhooks_secret_error,
    VerificationType.SENDGRID: ecdsa_public_key_error,
    VerificationType.BASIC_AUTH: lambda secret: None if ":" in secret else "basic_auth credentials are user:password",
}


def _dedup_implied(data: dict) -> dict:
    """Naming a strategy turns dedup on (and ``null`` turns it off) unless ``dedup_enabled``
    is given too, as the hosted product documents ``{"dedup_strategy": "payload_hash"}``."""
    if "dedup_strategy" in data and "dedup_enabled" not in data:
        return {**data, "dedup_enabled": bool(data["dedup_strategy"])}
    return data


def _with_template(data: dict, *, keep: tuple[str, ...] = ()) -> dict:
    """``data`` over the preset of the template it names (the request's own fields win; the
    preset's ``keep`` fields are left out)."""
    if not data.get("template"):
        return data
    template = source_template(data["template"])
    if template is None:
        raise ValidationError({"template": [f"No source template {data['template']!r}."]})
    preset = {name: value for name, value in template.preset().items() if name not in keep}
    return {**preset, **data}


def _source_check(source: Source, secret_plain: str) -> None:
    """Rules across fields, checked on the row as it would be saved."""
    errors: dict[str, list[str]] = {}
    if source.verification_type and not secret_plain:
        errors["verification_secret"] = [f"Required when verification_type is {source.verification_type}."]
    if secret_plain:
        check = _SECRET_CHECKS.get(source.verification_type or "")
        problem = check(secret_plain) if check else None
        if problem:
            errors["verification_secret"] = [problem[0].upper() + problem[1:] + "."]
    if source.dedup_enabled:
        if not source.dedup_strategy:
            errors["dedup_strategy"] = ["Required when dedup_enabled is true (payload_hash, header_field, body_field)."]
        elif source.dedup_strategy != DedupStrategy.PAYLOAD_HASH and not source.dedup_field:
            errors["dedup_field"] = [f"Required by dedup_strategy {source.dedup_strategy}."]
    if source.schema is not None:
        problems = schemas.schema_errors_of(source.schema)
        if problems:
            errors["schema"] = problems
    for list_field in ("ip_allowlist", "ip_denylist"):
        try:
            parse_networks(getattr(source, list_field))
        except ValueError as exc:
            errors[list_field] = [str(exc)]
    if errors:
        raise ValidationError(errors)


def source_create(*, organization: Organization, data: dict) -> Source:
    data = _dedup_implied(_with_template(data))
    if not data.get("name"):
        raise ValidationError({"name": ["This field is required."]})
    source = Source(organization=organization)
    for name in _SOURCE_PLAIN_FIELDS:
        if name in data:
            setattr(source, name, data[name])
    if not data.get("slug"):
        source.slug = _free_slug(Source, organization=organization, name=data["name"], fallback="source")
    secret = data.get("verification_secret") or ""
    if secret.startswith(crypto.MASK):
        raise ValidationError({"verification_secret": ["Send the secret in full, not its masked form."]})
    _source_check(source, secret)
    source.verification_secret = crypto.encrypt(secret) if secret else ""
    _save_or_409(source, "source")
    return source


def source_update(*, source: Source, data: dict) -> Source:
    """Apply a PATCH; a masked secret sent back keeps the stored one, ``null``/"" clears it.
    A ``template`` re-applies its verification and dedup preset to the fields the PATCH does
    not name (the name and description stay)."""
    data = _dedup_implied(_with_template(data, keep=("name", "description")))
    for name in _SOURCE_PLAIN_FIELDS:
        if name in data:
            setattr(source, name, data[name])
    stored_plain = crypto.decrypt(source.verification_secret) if source.verification_secret else ""
    secret_plain = stored_plain
    if "verification_secret" in data:
        given = data["verification_secret"] or ""
        if given and crypto.is_mask_of(given, stored_plain):
            secret_plain = stored_plain
        elif given.startswith(crypto.MASK):
            raise ValidationError({"verification_secret": ["Send the secret in full, not its masked form."]})
        else:
            secret_plain = given
    _source_check(source, secret_plain)
    if secret_plain != stored_plain:
        source.verification_secret = crypto.encrypt(secret_plain) if secret_plain else ""
    _save_or_409(source, "source")
    return source


def source_secret_generate(*, verification_type: str) -> str:
    """A new random verification secret in the form ``verification_type`` expects: Standard
    Webhooks ``whsec_`` + base64 of 32 bytes, else 64 hex characters. It is for the caller to
    show once and to hand to ``source_create``/``source_update``; nothing is stored here."""
    if verification_type == VerificationType.STANDARD_WEBHOOKS:
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_hex(32)


def source_delete(*, source: Source) -> None:
    """Delete a source with its connections; its events stay (``source`` becomes null)."""
    source.delete()


# --- connections and subscriptions -------------------------------------------------------------


def _route_check(data: dict) -> None:
    errors = {}
    rule_errors = filters.rules_errors(data.get("filter_rules"))
    if not rule_errors and "\\u0000" in json.dumps(data.get("filter_rules")):
        rule_errors = ["a rule may not contain the NUL character (\\u0000)"]
    if rule_errors:
        errors["filter_rules"] = rule_errors
    expression_errors = transforms.expression_errors(data.get("transform_expression"))
    if expression_errors:
        errors["transform_expression"] = expression_errors
    if errors:
        raise ValidationError(errors)


def _destination_of(organization: Organization, destination_id) -> Destination:
    destination = Destination.objects.filter(organization=organization, pk=destination_id).first()
    if destination is None:
        raise ValidationError({"destination_id": [f"No destination {destination_id!r} in this organization."]})
    return destination


def _source_of(organization: Organization, source_id) -> Source:
    source = Source.objects.filter(organization=organization, pk=source_id).first()
    if source is None:
        raise ValidationError({"source_id": [f"No source {source_id!r} in this organization."]})
    return source


def connection_create(*, organization: Organization, data: dict) -> Connection:
    missing = {name: ["This field is required."] for name in ("source_id", "destination_id") if not data.get(name)}
    if missing:
        raise ValidationError(missing)
    _route_check(data)
    connection_ = Connection(
        organization=organization,
        source=_source_of(organization, data["source_id"]),
        destination=_destination_of(organization, data["destination_id"]),
        name=data.get("name") or "",
        filter_rules=data.get("filter_rules") or [],
        transform_expression=data.get("transform_expression") or "",
        enabled=data.get("enabled", True),
    )
    connection_.save()
    return connection_


def connection_update(*, connection: Connection, data: dict) -> Connection:
    _route_check(data)
    if "source_id" in data:
        connection.source = _source_of(connection.organization, data["source_id"])
    if "destination_id" in data:
        connection.destination = _destination_of(connection.organization, data["destination_id"])
    for name in ("name", "enabled"):
        if name in data:
            setattr(connection, name, data[name])
    if "filter_rules" in data:
        connection.filter_rules = data["filter_rules"] or []
    if "transform_expression" in data:
        connection.transform_expression = data["transform_expression"] or ""
    connection.save()
    return connection


def connection_delete(*, connection: Connection) -> None:
    """Delete a connection; deliveries already made keep going (their ``connection`` is nulled)."""
    connection.delete()


def topic_create(*, organization: Organization, data: dict) -> Topic:
    if not data.get("name"):
        raise ValidationError({"name": ["This field is required."]})
    topic = Topic(organization=organization, name=data["name"], description=data.get("description") or "")
    topic.slug = data.get("slug") or _free_slug(Topic, organization=organization, name=data["name"], fallback="topic")
    _save_or_409(topic, "topic")
    return topic


def topic_update(*, topic: Topic, data: dict) -> Topic:
    for name in ("name", "slug", "description"):
        if name in data:
            setattr(topic, name, data[name])
    _save_or_409(topic, "topic")
    return topic


def topic_delete(*, topic: Topic) -> None:
    """Delete a topic with its subscriptions; its events stay (``topic`` becomes null)."""
    topic.delete()


def subscription_create(*, topic: Topic, data: dict) -> Subscription:
    if not data.get("destination_id"):
        raise ValidationError({"destination_id": ["This field is required."]})
    _route_check(data)
    subscription = Subscription(
        organization=topic.organization,
        topic=topic,
        destination=_destination_of(topic.organization, data["destination_id"]),
        filter_rules=data.get("filter_rules") or [],
        transform_expression=data.get("transform_expression") or "",
    )
    try:
        with transaction.atomic():
            subscription.save()
    except IntegrityError:
        raise Conflict(f"Destination {subscription.destination_id} is already subscribed to this topic.") from None
    return subscription


def subscription_update(*, subscription: Subscription, data: dict) -> Subscription:
    _route_check(data)
    if "filter_rules" in data:
        subscription.filter_rules = data["filter_rules"] or []
    if "transform_expression" in data:
        subscription.transform_expression = data["transform_expression"] or ""
    subscription.save()
    return subscription


def subscription_delete(*, subscription: Subscription) -> None:
    subscription.delete()


# --- events: store and fan out ---------------------------------------------------------------


@dataclass
class Incoming:
    """One received request, as stored on its Event."""

    method: str
    body: bytes
    headers: dict
    query: dict = field(default_factory=dict)
    content_type: str = ""
    source_ip: str | None = None

    def parsed_payload(self):
        """The body as JSON when it is JSON (by content type, or a bare body that parses).

        JSON that PostgreSQL's jsonb cannot hold (NUL or a lone surrogate in a string, NaN,
        Infinity, 1e999, very deep nesting) is kept byte-exact in ``body``, unparsed
        (``payload`` null): the event is stored all the same.
        """
        if not self.body:
            return None
        kind = self.content_type.split(";", 1)[0].strip().lower()
        if kind and not (kind == "application/json" or kind.endswith("+json") or kind == "text/json"):
            return None
        try:
            return storable_loads(self.body)
        except ValueError:  # NotStorable, JSONDecodeError, UnicodeDecodeError
            return None


@dataclass
class Stored:
    event: Event
    deduplicated: bool = False
    replayed: bool = False


def _new_event(*, organization_id: str, incoming: Incoming, now: datetime, **fields: Any) -> Event:
    return Event(
        id=new_id("evt"),
        organization_id=organization_id,
        method=incoming.method,
        headers=incoming.headers,
        query=incoming.query,
        content_type=incoming.content_type,
        body=incoming.body,
        payload=incoming.parsed_payload(),
        body_size=len(incoming.body),
        source_ip=incoming.source_ip,
        received_at=now,
        created_at=now,
        **fields,
    )


def dedup_field_parts(field: str) -> tuple[str, str]:
    """Where a ``dedup_field`` points: ``("header", name)`` or ``("body", "a.b")``.

    Accepted forms: ``headers.x-id`` (a header, whatever the strategy), ``$.a.b`` and
    ``$.items[0].id`` (JSONPath), ``payload.a.b`` and plain ``a.b``.
    """
    field = field.strip()
    if field.lower().startswith("headers."):
        return "header", field[len("headers.") :]
    if field.startswith("$"):
        field = field[1:].lstrip(".")
    field = re.sub(r"\[(\d+)\]", r".\1", field).strip(".")
    if field == "payload" or field.startswith("payload."):
        field = field[len("payload") :].lstrip(".")
    return "body", field


def dedup_key(source: Source, event: Event) -> str | None:
    """The dedup key of ``event`` for ``source``, or None when it has nothing to dedup on
    (the header or field is absent: the event is stored with ``dedup_status: no_key``)."""
    strategy = source.dedup_strategy
    if strategy == DedupStrategy.PAYLOAD_HASH:
        material = bytes(event.body)
    elif strategy in (DedupStrategy.HEADER_FIELD, DedupStrategy.BODY_FIELD):
        where, name = dedup_field_parts(source.dedup_field)
        if strategy == DedupStrategy.HEADER_FIELD or where == "header":
            wanted = name.lower()
            value = next((v for k, v in event.headers.items() if k.lower() == wanted), None)
            if value in (None, ""):
                return None
            material = str(value).encode()
        else:
            value = filters.resolve({"payload": event.payload, "headers": {}}, f"payload.{name}" if name else "payload")
            if value is filters.UNDEFINED or value is None:
                return None
            material = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    else:
        return None
    return hashlib.sha256(strategy.encode() + b"\0" + material).hexdigest()


def _dedup_claim(*, source: Source, key: str, event_id: str, now) -> str | None:
    """Claim ``key`` for ``event_id``; returns the original event's id when it is a duplicate.

    1. INSERT … ON CONFLICT DO NOTHING: of concurrent identical requests one inserts; the
       others wait for it to commit (PostgreSQL) and insert nothing.
    2. Nothing inserted: take over the key if it has expired (a conditional UPDATE, so two
       takers cannot both win).
    3. Otherwise the key is live: answer with the event that holds it.
    The event row is inserted after the key in the same transaction (the foreign key is
    checked at commit).
    """
    expires = now + timedelta(seconds=source.dedup_window_seconds)
    table = DedupKey._meta.db_table
    ops = connection.ops
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (source_id, key, event_id, expires_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (source_id, key) DO NOTHING RETURNING id",
                [source.pk, key, event_id, ops.adapt_datetimefield_value(expires)],
            )
            if cursor.fetchone() is not None:
                return None
        if DedupKey.objects.filter(source=source, key=key, expires_at__lte=now).update(
            event_id=event_id, expires_at=expires
        ):
            return None
        original = DedupKey.objects.filter(source=source, key=key).values_list("event_id", flat=True).first()
        if original is not None:
            return original
        # The key vanished between the statements (its event was purged): try again.
    raise IntegrityError("could not claim the dedup key")


_COUNT_EVENT_SQL = (
    f"UPDATE {Source._meta.db_table} SET event_count = event_count + 1, "
    "last_event_at = GREATEST(last_event_at, %s) WHERE id = %s; "
    "SET LOCAL synchronous_commit TO OFF"
)


def source_count_event_sql(*, source: Source, now) -> tuple[str, list[Any]]:
    """``source_count_event``'s statements (PostgreSQL), for a caller that sends them in the
    round trip that commits the event (``deliveries.fanout``), after its COMMIT."""
    return _COUNT_EVENT_SQL, [now, source.pk]


def source_count_event_failed(*, source: Source) -> None:
    """Log a failed count: the event is stored, so the request still succeeds."""
    logger.warning("could not count event on source %s", source.pk, exc_info=True)


def source_count_event(*, source: Source, now) -> None:
    """Add one event to the source's counters (``event_count``, ``last_event_at``).

    Run after the event's transaction has committed, as a statement of its own that is
    committed asynchronously on PostgreSQL: the counters are one row per source, and a
    row lock held until a synchronous commit (a WAL flush) would let only one ingest of a
    hot source commit at a time. The event and its deliveries are durable before this
    runs; a database crash in the following fraction of a second can lose counter
    increments, never an event. A failure here is logged, not answered: the event is stored.
    """
    try:
        if connection.vendor != "postgresql":
            Source.objects.filter(pk=source.pk).update(event_count=F("event_count") + 1, last_event_at=now)
            return
        with connection.cursor() as cursor:
            # One round trip: SET LOCAL applies to the implicit transaction of this query string.
            cursor.execute(*source_count_event_sql(source=source, now=now))
    except DatabaseError:
        source_count_event_failed(source=source)


def event_received_on_commit(*, event: Event) -> None:
    """Once the caller's transaction has committed: announce the stored event to the apps
    above (``intake.signals.event_received``) and show it on the live stream (``events`` and
    ``events:<source or topic>``)."""
    signals.event_received_on_commit(event)
    origin = event.source_id or event.topic_id
    stream_bus.publish_on_commit(
        organization_id=event.organization_id,
        channels=["events", f"events:{origin}"],
        frame={
            "type": "event",
            "data": {
                "id": event.pk,
                "source_id": event.source_id,
                "topic_id": event.topic_id,
                "method": event.method,
                "status": "received",
                "received_at": event.received_at.isoformat(),
            },
        },
    )


def event_store(*, organization_id: str, incoming: Incoming, now: datetime, **fields: Any) -> Event:
    """Store an event that has no source nor topic (a test send)."""
    event = _new_event(organization_id=organization_id, incoming=incoming, now=now, **fields)
    event.save(force_insert=True)
    return event


def source_event_new(
    *, source: Source, incoming: Incoming, now: datetime, schema_errors: list[str] | None = None
) -> tuple[Event, str | None]:
    """The event a request received at a source's ingest URL would store (unsaved), and its
    dedup key: None when dedup is off or the event has nothing to dedup on."""
    event = _new_event(organization_id=source.organization_id, incoming=incoming, now=now, source_id=source.pk)
    if source.verification_type:
        event.verification_status = EventVerificationStatus.VERIFIED
    if schema_errors is not None:
        event.schema_status = SchemaStatus.INVALID if schema_errors else SchemaStatus.VALID
        event.schema_errors = schema_errors or None
    key = None
    if source.dedup_enabled:
        key = dedup_key(source, event)
        event.dedup_status = DedupStatus.NO_KEY if key is None else DedupStatus.UNIQUE
    return event, key


def source_event_claim(*, source: Source, event: Event, key: str, now: datetime) -> Stored | None:
    """Claim the dedup ``key`` for ``event`` in the caller's transaction, before the event
    is inserted: None when claimed, else the answer for a duplicate (the original event,
    ``deduplicated``), which stores nothing."""
    original = _dedup_claim(source=source, key=key, event_id=event.pk, now=now)
    if original is None:
        return None
    return Stored(event=Event(id=original, source_id=source.pk), deduplicated=True)


def source_event_store(
    *, source: Source, incoming: Incoming, now: datetime, schema_errors: list[str] | None = None
) -> Stored:
    """Store a request received at a source's ingest URL, in the caller's transaction, with
    the ORM (``deliveries.fanout`` writes it with its deliveries in one statement on
    PostgreSQL).

    Dedup (when enabled) first: claim the key, or answer with the original event
    (``deduplicated``) and store nothing. The caller counts the event on the source
    (``source_count_event``) once its transaction has committed.
    """
    event, key = source_event_new(source=source, incoming=incoming, now=now, schema_errors=schema_errors)
    if key is not None and (duplicate := source_event_claim(source=source, event=event, key=key, now=now)):
        return duplicate
    event.save(force_insert=True)
    return Stored(event=event)


def topic_event_new(*, topic: Topic, incoming: Incoming, idempotency_key: str | None, now: datetime) -> Event:
    """The event a publish to ``topic`` would store (unsaved); its body must be a JSON object."""
    event = _new_event(
        organization_id=topic.organization_id,
        incoming=incoming,
        now=now,
        topic_id=topic.pk,
        idempotency_key=idempotency_key or None,
    )
    if not isinstance(event.payload, dict):
        raise ValidationError({"body": ["The body must be a JSON object (without \\u0000, which cannot be stored)."]})
    return event


def topic_event_store(*, event: Event, now: datetime) -> Stored:
    """Store an event published to a topic (``topic_event_new``), in the caller's transaction.

    With an idempotency key, the same key on the same topic within 24 hours answers with the
    first event (``replayed``) and stores nothing. The unique constraint on
    (organization, topic, idempotency_key) settles concurrent publishes; a key older than
    24 hours is released (set to null on its old event) so it can be used again.
    """
    if not event.idempotency_key:
        event.save(force_insert=True)
        return Stored(event=event)
    mine = Event.objects.filter(
        organization_id=event.organization_id, topic_id=event.topic_id, idempotency_key=event.idempotency_key
    )
    mine.filter(received_at__lt=now - IDEMPOTENCY_WINDOW).update(idempotency_key=None)
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:
        first = mine.first()
        if first is None:
            raise
        return Stored(event=first, replayed=True)
    return Stored(event=event)
