"""Writes of intake: sources, connections, topics and subscriptions; storing an event and
fanning it out to Delivery rows.

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
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from deliveries import signals as delivery_signals
from deliveries.models import DeadLetter, DeadLetterReason, Delivery, DeliveryStatus
from deliveries.services import deliveries_enqueue_on_commit
from destinations.models import Destination, DestinationStatus
from hookstream import crypto
from hookstream.api.exceptions import Conflict
from hookstream.ids import new_id
from hookstream.models import Organization
from intake import filters, signals, transforms
from intake.models import (
    Connection,
    DedupKey,
    DedupStrategy,
    Event,
    Source,
    Subscription,
    Topic,
    VerificationType,
)
from intake.verification import parse_networks, standard_webhooks_secret_error

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
    "status",
)


def _source_check(source: Source, secret_plain: str) -> None:
    """Rules across fields, checked on the row as it would be saved."""
    errors: dict[str, list[str]] = {}
    if source.verification_type and not secret_plain:
        errors["verification_secret"] = [f"Required when verification_type is {source.verification_type}."]
    if source.verification_type == VerificationType.STANDARD_WEBHOOKS and secret_plain:
        problem = standard_webhooks_secret_error(secret_plain)
        if problem:
            errors["verification_secret"] = [problem[0].upper() + problem[1:] + "."]
    if source.dedup_enabled:
        if not source.dedup_strategy:
            errors["dedup_strategy"] = ["Required when dedup_enabled is true (payload_hash, header_field, body_field)."]
        elif source.dedup_strategy != DedupStrategy.PAYLOAD_HASH and not source.dedup_field:
            errors["dedup_field"] = [f"Required by dedup_strategy {source.dedup_strategy}."]
    for list_field in ("ip_allowlist", "ip_denylist"):
        try:
            parse_networks(getattr(source, list_field))
        except ValueError as exc:
            errors[list_field] = [str(exc)]
    if errors:
        raise ValidationError(errors)


def source_create(*, organization: Organization, data: dict) -> Source:
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
    """Apply a PATCH; a masked secret sent back keeps the stored one, ``null``/"" clears it."""
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
        """The body as JSON when it is JSON (by content type, or a bare body that parses)."""
        # PostgreSQL's jsonb cannot hold U+0000; such a body is kept byte-exact, unparsed.
        if not self.body or b"\\u0000" in self.body:
            return None
        kind = self.content_type.split(";", 1)[0].strip().lower()
        if kind and not (kind == "application/json" or kind.endswith("+json") or kind == "text/json"):
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None


@dataclass
class Stored:
    event: Event
    deduplicated: bool = False
    replayed: bool = False


def _fan_out(*, event: Event, routes, now) -> None:
    """Create one Delivery per matching route, in the caller's transaction.

    A route whose transform fails gets its Delivery created dead, with a dead letter that
    says why; the event itself is stored whatever its routes do.
    """
    if not routes:
        return
    context = filters.event_context(
        payload=event.payload,
        headers=event.headers,
        method=event.method,
        content_type=event.content_type,
        source_ip=event.source_ip,
    )
    deliveries, dead = [], []
    for route in routes:
        if not filters.rules_match(route.filter_rules, context):
            continue
        delivery = Delivery(
            id=new_id("dlv"),
            organization_id=event.organization_id,
            event_id=event.pk,
            destination_id=route.destination_id,
            next_attempt_at=now,
            woken_at=now,
            created_at=now,
        )
        if isinstance(route, Connection):
            delivery.connection_id = route.pk
        else:
            delivery.subscription_id = route.pk
        if route.transform_expression:
            try:
                delivery.transformed_payload = transforms.transform_apply(route.transform_expression, event.payload)
            except transforms.TransformError as exc:
                delivery.status = DeliveryStatus.DEAD
                delivery.last_error = f"transform failed: {exc}"
                delivery.completed_at = now
                delivery.woken_at = None
                dead.append(
                    DeadLetter(
                        organization_id=event.organization_id,
                        delivery_id=delivery.pk,
                        destination_id=route.destination_id,
                        event_id=event.pk,
                        reason=DeadLetterReason.TRANSFORM_FAILED,
                        last_error=delivery.last_error,
                    )
                )
        deliveries.append(delivery)
    if not deliveries:
        return
    Delivery.objects.bulk_create(deliveries)
    if dead:
        DeadLetter.objects.bulk_create(dead)
    for dead_delivery in (d for d in deliveries if d.status == DeliveryStatus.DEAD):
        delivery_signals.send_on_commit(
            delivery_signals.delivery_dead_lettered,
            delivery=dead_delivery,
            reason=DeadLetterReason.TRANSFORM_FAILED,
            error=dead_delivery.last_error,
        )
    deliveries_enqueue_on_commit([d.pk for d in deliveries if d.status == DeliveryStatus.PENDING])


def _new_event(*, organization_id, incoming: Incoming, now, **fields) -> Event:
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


def dedup_key(source: Source, event: Event) -> str | None:
    """The dedup key of ``event`` for ``source``, or None when it has nothing to dedup on."""
    strategy = source.dedup_strategy
    if strategy == DedupStrategy.PAYLOAD_HASH:
        material = bytes(event.body)
    elif strategy == DedupStrategy.HEADER_FIELD:
        wanted = source.dedup_field.lower()
        value = next((v for k, v in event.headers.items() if k.lower() == wanted), None)
        if value in (None, ""):
            return None
        material = str(value).encode()
    elif strategy == DedupStrategy.BODY_FIELD:
        path = source.dedup_field if source.dedup_field.startswith("payload") else f"payload.{source.dedup_field}"
        value = filters.resolve({"payload": event.payload, "headers": {}}, path)
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


def _source_count_event(*, source: Source, now) -> None:
    """Add one event to the source's counters (``event_count``, ``last_event_at``).

    Run after the event's transaction has committed, as a statement of its own that is
    committed asynchronously on PostgreSQL: the counters are one row per source, and a
    row lock held until a synchronous commit (a WAL flush) would let only one ingest of a
    hot source commit at a time. The event and its deliveries are durable before this
    runs; a database crash in the following fraction of a second can lose counter
    increments, never an event. A failure here is logged, not answered: the event is stored.
    """
    sources = Source.objects.filter(pk=source.pk)
    try:
        if connection.vendor != "postgresql":
            sources.update(event_count=F("event_count") + 1, last_event_at=now)
            return
        with connection.cursor() as cursor:
            # One round trip: SET LOCAL applies to the implicit transaction of this query string.
            cursor.execute(
                f"UPDATE {Source._meta.db_table} SET event_count = event_count + 1, "
                "last_event_at = GREATEST(last_event_at, %s) WHERE id = %s; "
                "SET LOCAL synchronous_commit TO OFF",
                [now, source.pk],
            )
    except DatabaseError:
        logger.warning("could not count event on source %s", source.pk, exc_info=True)


def event_ingest(*, source: Source, routes: list[Connection], incoming: Incoming) -> Stored:
    """Store a request received at a source's ingest URL and fan it out.

    1. Dedup (when enabled): claim the key or answer with the original event.
    2. Insert the event, its deliveries (and dead letters of failed transforms), in one
       transaction; the deliveries are enqueued when it commits.
    3. Count the event on the source (``_source_count_event``), once it is committed.
    """
    now = timezone.now()
    event = _new_event(organization_id=source.organization_id, incoming=incoming, now=now, source_id=source.pk)
    with transaction.atomic():
        if source.dedup_enabled:
            key = dedup_key(source, event)
            if key is not None:
                original = _dedup_claim(source=source, key=key, event_id=event.pk, now=now)
                if original is not None:
                    return Stored(event=Event(id=original, source_id=source.pk), deduplicated=True)
        event.save(force_insert=True)
        signals.event_received_on_commit(event)
        _fan_out(event=event, routes=routes, now=now)
    _source_count_event(source=source, now=now)
    return Stored(event=event)


def topic_routes(topic: Topic) -> list[Subscription]:
    return list(
        Subscription.objects.filter(
            topic=topic, destination__deleted_at__isnull=True, destination__status=DestinationStatus.ACTIVE
        ).only("id", "destination_id", "filter_rules", "transform_expression")
    )


def topic_publish(*, topic: Topic, incoming: Incoming, idempotency_key: str | None = None) -> Stored:
    """Store an event published to a topic and fan it out to its subscriptions.

    With an idempotency key, the same key on the same topic within 24 hours answers with the
    first event (``replayed``) and stores nothing. The unique constraint on
    (organization, topic, idempotency_key) settles concurrent publishes; a key older than
    24 hours is released (set to null on its old event) so it can be used again.
    """
    now = timezone.now()
    event = _new_event(
        organization_id=topic.organization_id,
        incoming=incoming,
        now=now,
        topic_id=topic.pk,
        idempotency_key=idempotency_key or None,
    )
    if not isinstance(event.payload, dict):
        raise ValidationError({"body": ["The body must be a JSON object (without \\u0000, which cannot be stored)."]})
    routes = topic_routes(topic)
    with transaction.atomic():
        if idempotency_key:
            mine = Event.objects.filter(
                organization_id=topic.organization_id, topic=topic, idempotency_key=idempotency_key
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
        else:
            event.save(force_insert=True)
        signals.event_received_on_commit(event)
        _fan_out(event=event, routes=routes, now=now)
    return Stored(event=event)
