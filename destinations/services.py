"""Writes of destinations: create, update, delete.

What a change does to the destination's deliveries (a resume releases the held ones, a
delete cancels what it owed) and the circuit reset are ``deliveries``': entry points call
``deliveries.services.destination_update`` / ``destination_delete`` and
``deliveries.circuit.circuit_reset``.

The API serializer checks the shape of each field; the rules that need the type, the
template or the stored row (provider config, URLs, signing, secrets, slugs) live here.
Validation failures raise ``django.core.exceptions.ValidationError`` with a
``{field: [messages]}`` dict, which the API renders as a 400 with ``details``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from destinations.models import CircuitState, Destination, DestinationStatus
from destinations.providers import REGISTRY, ConfigError, Provider, get_provider
from destinations.signing import SECRET_FIELDS as SIGNING_SECRET_FIELDS
from destinations.signing import SigningConfigError, validate_signing_config
from hookstream import crypto, versions
from hookstream.errors import Conflict
from hookstream.headers import unmask_headers
from hookstream.models import Organization
from templates_catalog.catalog import get_template, template_defaults, template_placeholders

SLUG_RE = re.compile(r"^[a-z0-9-]+$")
# A value a client got from a response: "****" + at most 4 characters.
_MASK_RE = re.compile(r"^\*{4}.{0,4}$", re.DOTALL)

# Fields copied as they are from the validated input to the row.
PLAIN_FIELDS = (
    "name",
    "method",
    "headers",
    "timeout_ms",
    "retry_max_attempts",
    "retry_backoff_type",
    "retry_intervals",
    "retry_jitter",
    "circuit_breaker_enabled",
    "circuit_breaker_threshold",
    "circuit_breaker_reset_ms",
    "max_concurrency",
    "rate_limit_per_second",
    "status",
)


def _looks_masked(value: Any) -> bool:
    return isinstance(value, str) and bool(_MASK_RE.match(value))


def _apply_template(data: dict) -> dict:
    """Fill ``data`` from its template: the type, then the template's defaults under what the
    caller gave; and insist on the placeholders the template leaves to the caller."""
    template_id = data.get("template") or ""
    if not template_id:
        return data
    template = get_template(template_id)
    if template is None:
        raise ValidationError({"template": [f"Unknown template {template_id!r}; see GET /v1/destinations/templates."]})
    if data.get("type") and data["type"] != template.type:
        raise ValidationError(
            {"type": [f"The {template.id} template makes a {template.type} destination, not {data['type']}."]}
        )
    data = dict(data)
    data["type"] = template.type
    data.setdefault("name", template.name)
    for key, value in template_defaults(template).items():
        if isinstance(value, dict):
            data[key] = {**value, **(data.get(key) or {})}
        else:
            data.setdefault(key, value)
    errors = {}
    for path in template_placeholders(template):
        value = data.get(path[0])
        if len(path) == 2:
            value = (value or {}).get(path[1])
        if value in (None, ""):
            errors[".".join(path)] = [f"Required by the {template.id} template."]
    if errors:
        raise ValidationError(errors)
    return data


def _check_url(type_: str, url: str, provider_config: dict, *, check_address: bool = True) -> str:
    """The destination's ``url`` column, checked by its type's rules; raises ValidationError.

    ``check_address`` is off when a PATCH leaves the target unchanged: a destination saved
    while private networks were allowed stays editable."""
    try:
        return get_provider(type_).check_url(url, provider_config, check_address=check_address)
    except ConfigError as exc:
        raise ValidationError(exc.errors) from None


def destination_target_errors(
    *, type_: str, url: str, provider_config: dict, check_address: bool = True
) -> dict[str, list[str]]:
    """What ``destination_create``/``destination_update`` would refuse about this target, as
    ``{path: [messages]}`` (empty when nothing): for a form that reports every error of a
    submit at once, not only those of the first group the service checks."""
    try:
        _check_url(type_, url, provider_config, check_address=check_address)
    except ValidationError as exc:
        return exc.message_dict
    return {}


def _resolve_masks(config: dict, secret_fields, previous_plain: dict, field_prefix: str) -> dict:
    """Replace echoed masks by the stored secrets they stand for; refuse other masks."""
    resolved = dict(config)
    errors = {}
    for name in secret_fields:
        value = resolved.get(name)
        if not _looks_masked(value):
            continue
        old = previous_plain.get(name)
        if isinstance(old, str) and crypto.is_mask_of(value, old):
            resolved[name] = old
        else:
            errors[f"{field_prefix}.{name}"] = [
                "This is a masked value that does not match the stored secret; send the secret in full."
            ]
    if errors:
        raise ValidationError(errors)
    return resolved


def _resolve_header_masks(provider: type[Provider], config: dict, previous_plain: dict) -> dict:
    """Header objects of ``provider_config`` (websocket ``headers``): a credential value sent
    back masked keeps the stored value."""
    resolved = dict(config)
    for spec in provider.fields:
        value, old = resolved.get(spec.name), previous_plain.get(spec.name)
        if spec.headers and isinstance(value, dict) and isinstance(old, dict):
            resolved[spec.name] = unmask_headers(value, old)
    return resolved


def _encrypt_secrets(config: dict, secret_fields) -> dict:
    """Encrypt the secrets of a validated config. A secret given as an object (a GCP service
    account) is stored as its JSON text, so that it is encrypted like any other secret."""
    result = dict(config)
    for name in secret_fields:
        value = result.get(name)
        if value is not None and not isinstance(value, str):
            result[name] = json.dumps(value)
    return crypto.encrypt_fields(result, secret_fields)


def _provider_config(type_: str, config: dict, url: str, *, unchanged: Collection[str] = ()) -> dict:
    try:
        return get_provider(type_).validate_config(config, url=url, unchanged=unchanged)
    except ConfigError as exc:
        raise ValidationError(exc.errors) from None


def _signing_config(type_: str, config: dict | None) -> dict | None:
    if config in (None, {}):
        return None
    if not get_provider(type_).signs:
        signing_types = ", ".join(name for name, provider in REGISTRY.items() if provider.signs)
        raise ValidationError({"signing_config": [f"Only {signing_types} destinations sign their requests."]})
    try:
        return validate_signing_config(config)
    except SigningConfigError as exc:
        raise ValidationError(exc.errors) from None


def _check_slug(*, organization_id: str, slug: str, exclude_id: str | None = None) -> None:
    if not SLUG_RE.match(slug):
        raise ValidationError({"slug": ["Must match ^[a-z0-9-]+$ (lowercase letters, digits and hyphens)."]})
    taken = Destination.objects.filter(organization_id=organization_id, slug=slug)
    if exclude_id:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise Conflict(f"A destination with slug {slug!r} already exists in this organization.")


def _default_slug(*, organization: Organization, name: str) -> str:
    """A free slug made from the name (``backend-api``, then ``backend-api-2``…)."""
    base = slugify(name).replace("_", "-")[:90].strip("-") or "destination"
    taken = set(
        Destination.objects.filter(organization=organization, slug__startswith=base).values_list("slug", flat=True)
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _save(destination: Destination, *, slug: str, create: bool) -> None:
    """Insert or update; a slug taken by a concurrent request is a 409, not a 500."""
    try:
        with transaction.atomic():
            destination.save(force_insert=create)
            if create:
                CircuitState.objects.create(destination=destination)
    except IntegrityError:
        raise Conflict(f"A destination with slug {slug!r} already exists in this organization.") from None


def destination_create(*, organization: Organization, data: dict) -> Destination:
    """Create a destination from validated API input.

    1. Apply the template (type, defaults, required placeholders).
    2. Check type, name, slug, url (with the SSRF guard), provider_config, signing_config.
    3. Encrypt the secrets and insert the row with its closed circuit.
    """
    data = _apply_template(data)
    errors = {}
    if not data.get("type"):
        errors["type"] = ["This field is required (or name a template)."]
    if not data.get("name"):
        errors["name"] = ["This field is required."]
    if errors:
        raise ValidationError(errors)
    type_ = data["type"]
    provider = get_provider(type_)
    slug = data.get("slug") or _default_slug(organization=organization, name=data["name"])
    config_in = data.get("provider_config") or {}
    for name in provider.secret_fields():
        if _looks_masked(config_in.get(name)):
            raise ValidationError({f"provider_config.{name}": ["Send the secret in full, not its masked form."]})
    url = _check_url(type_, data.get("url") or "", config_in)
    config = _provider_config(type_, config_in, url)
    signing_in = data.get("signing_config")
    if isinstance(signing_in, dict) and _looks_masked(signing_in.get("secret")):
        raise ValidationError({"signing_config.secret": ["Send the secret in full, not its masked form."]})
    signing = _signing_config(type_, signing_in)

    destination = Destination(
        organization=organization,
        slug=slug,
        type=type_,
        url=url,
        template=data.get("template") or "",
        provider_config=_encrypt_secrets(config, provider.secret_fields()),
        signing_config=_encrypt_secrets(signing, SIGNING_SECRET_FIELDS) if signing else None,
    )
    for field in PLAIN_FIELDS:
        if field in data:
            setattr(destination, field, data[field])
    _check_slug(organization_id=organization.pk, slug=slug)
    _save(destination, slug=slug, create=True)
    return destination


def destination_update(*, destination: Destination, data: dict) -> Destination:
    """Apply a PATCH.

    ``provider_config`` and ``signing_config`` are merged into the stored ones key by key
    (a ``null`` removes a key) unless the type (or signing mode) changes, which replaces
    them. A secret sent back in its masked form keeps the stored secret.
    """
    with transaction.atomic():
        # Locked so that two PATCHes merging configs cannot lose each other's changes.
        row = Destination.objects.select_for_update().get(pk=destination.pk)
        type_ = data.get("type") or row.type
        type_changed = type_ != row.type
        old_provider = get_provider(row.type)
        provider = get_provider(type_)

        template_id = data.get("template", row.template) or ""
        if template_id:
            template = get_template(template_id)
            if template is None:
                raise ValidationError(
                    {"template": [f"Unknown template {template_id!r}; see GET /v1/destinations/templates."]}
                )
            if template.type != type_:
                raise ValidationError(
                    {"template": [f"The {template.id} template is for {template.type} destinations."]}
                )

        # The target and its config are checked again only when the PATCH touches them, so
        # renaming a destination never trips over a rule that changed since it was saved.
        if type_changed or "provider_config" in data or "url" in data:
            previous_plain = crypto.decrypt_fields(row.provider_config or {}, old_provider.secret_fields())
            if type_changed:
                config_in = dict(data.get("provider_config") or {})
                previous_plain = {}
            else:
                config_in = {**previous_plain, **(data.get("provider_config") or {})}
            config_in = {k: v for k, v in config_in.items() if v is not None}
            config_in = _resolve_masks(config_in, provider.secret_fields(), previous_plain, "provider_config")
            config_in = _resolve_header_masks(provider, config_in, previous_plain)
            unchanged = {k for k, v in config_in.items() if k in previous_plain and previous_plain[k] == v}
            if "url" in data:
                url = data["url"]
            else:
                url = "" if type_changed and not provider.url_required else row.url
            target_changed = type_changed or "url" in data or "url" in (data.get("provider_config") or {})
            row.url = _check_url(type_, url or "", config_in, check_address=target_changed)
            row.provider_config = _encrypt_secrets(
                _provider_config(type_, config_in, row.url, unchanged=unchanged), provider.secret_fields()
            )

        if "signing_config" in data or type_changed:
            signing_in = data.get("signing_config")
            previous_signing = crypto.decrypt_fields(row.signing_config or {}, SIGNING_SECRET_FIELDS)
            if isinstance(signing_in, dict) and previous_signing:
                same_mode = signing_in.get("mode", previous_signing.get("mode")) == previous_signing.get("mode")
                if same_mode:
                    signing_in = {k: v for k, v in {**previous_signing, **signing_in}.items() if v is not None}
                signing_in = _resolve_masks(signing_in, SIGNING_SECRET_FIELDS, previous_signing, "signing_config")
            elif isinstance(signing_in, dict) and _looks_masked(signing_in.get("secret")):
                raise ValidationError({"signing_config.secret": ["Send the secret in full, not its masked form."]})
            if type_changed and "signing_config" not in data and provider.signs:
                signing_in = previous_signing or None
            signing = _signing_config(type_, signing_in)
            row.signing_config = _encrypt_secrets(signing, SIGNING_SECRET_FIELDS) if signing else None

        slug = data.get("slug", row.slug)
        if "slug" in data:
            _check_slug(organization_id=row.organization_id, slug=slug, exclude_id=row.pk)

        row.type = type_
        row.slug = slug
        row.template = template_id
        if isinstance(data.get("headers"), dict):
            # Credential headers are shown masked; one sent back unchanged keeps its value.
            data = {**data, "headers": unmask_headers(data["headers"], row.headers or {})}
        for field in PLAIN_FIELDS:
            if field in data:
                setattr(row, field, data[field])
        if not row.name:
            raise ValidationError({"name": ["May not be blank."]})
        _save(row, slug=slug, create=False)
    return row


def destination_delete(*, destination: Destination) -> None:
    """Soft-delete: hide the destination (its history stays). Its unfinished deliveries are
    cancelled by ``deliveries.services.destination_delete``, which calls this."""
    Destination.all_objects.filter(pk=destination.pk, deleted_at__isnull=True).update(
        deleted_at=timezone.now(), status=DestinationStatus.DISABLED
    )
    # A queryset update sends no post_save: say so to the routing caches (``intake.receivers``).
    versions.bump(versions.routes_scope(destination.organization_id))
