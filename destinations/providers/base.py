"""The one interface every destination type implements.

A provider module defines a subclass of :class:`Provider` and registers it with
:func:`register`. The engine only ever calls :meth:`Provider.validate_config` (at
create/update time) and :meth:`Provider.send` (once per attempt); retries, circuit breaker,
dead letters and attempt records are the engine's and apply to every type unchanged.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from hookstream.headers import control_character_error, header_name_error, header_value_error, headers_errors
from hookstream.ssrf import host_error, literal_address_error


class ConfigError(Exception):
    """A bad ``provider_config``: ``errors`` maps a field name to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ConfigField:
    """One ``provider_config`` field.

    What the value becomes decides the checks it gets: ``url_schemes`` — a URL the provider
    connects to (scheme, host, no control characters, literal private hosts refused);
    ``hosts`` — ``host:port`` entries, comma-separated (the same host rules); ``header_name``
    / ``header_value`` — sent as a header's name or value; ``headers`` — a name → value object
    sent as headers.
    """

    name: str
    required: bool = False
    secret: bool = False
    kind: type | tuple = str
    choices: tuple | None = None
    default: Any = None
    help: str = ""
    url_schemes: tuple[str, ...] = ()
    hosts: bool = False
    header_name: bool = False
    header_value: bool = False
    headers: bool = False

    def errors(self, value: Any, *, check_address: bool = True) -> list[str]:
        """What is wrong with a value of the right type (empty: nothing)."""
        if self.url_schemes:
            return url_errors(value, self.url_schemes, check_address=check_address)
        if self.hosts:
            return hosts_errors(value, check_address=check_address)
        if self.header_name:
            error = header_name_error(value)
            return [error] if error else []
        if self.header_value:
            error = header_value_error(self.name, value)
            return [error] if error else []
        if self.headers:
            return headers_errors(value)
        return []


def url_errors(url: str, schemes: tuple[str, ...], *, check_address: bool = True) -> list[str]:
    """A target URL: one of ``schemes``, a host, no control characters, not a refused host."""
    control = control_character_error(url)
    if control:
        return [control]
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return ["Not a valid URL."]
    if parts.scheme not in schemes or not host:
        return [f"Must be a {' or '.join(f'{scheme}://' for scheme in schemes)} URL with a host."]
    error = host_error(host) if check_address else None
    return [error] if error else []


def hosts_errors(value: str, *, check_address: bool = True) -> list[str]:
    """``host:port`` entries separated by commas (an optional ``scheme://`` prefix is allowed)."""
    control = control_character_error(value)
    if control:
        return [control]
    errors = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            host = urlsplit("//" + entry.split("://", 1)[-1]).hostname
        except ValueError:
            host = None
        if not host:
            errors.append(f"{entry!r} is not a host:port.")
            continue
        error = host_error(host) if check_address else None
        if error:
            errors.append(error)
    return errors


@dataclass
class OutboundMessage:
    """What one attempt sends: the event, already transformed for its route."""

    event_id: str
    destination_id: str
    attempt_number: int
    body: bytes
    content_type: str
    payload: Any  # the body parsed as JSON (or the transformed payload); None if not JSON
    source_id: str | None = None
    topic: str | None = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)  # the event's received headers
    received_at: datetime | None = None


@dataclass
class Outcome:
    """The result of one attempt.

    ``ok`` — delivered. ``retryable`` — a failure worth retrying (ignored when ok).
    ``retry_after`` — seconds the counterpart asked us to wait (e.g. ``Retry-After``).
    The request/response fields become the DeliveryAttempt row.
    """

    ok: bool
    retryable: bool = True
    error: str = ""
    request_url: str = ""
    request_method: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body_size: int = 0
    response_status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    retry_after: float | None = None

    @classmethod
    def success(cls, **kwargs) -> Outcome:
        return cls(ok=True, retryable=False, **kwargs)

    @classmethod
    def retry(cls, error: str, **kwargs) -> Outcome:
        return cls(ok=False, retryable=True, error=error, **kwargs)

    @classmethod
    def permanent(cls, error: str, **kwargs) -> Outcome:
        return cls(ok=False, retryable=False, error=error, **kwargs)


class Provider:
    """Base class: declare ``type``, ``label``, ``description`` and ``fields``; override
    ``clean`` for cross-field rules and ``send`` to deliver.

    What a type declares about the destination's own columns:

    * ``uses_url`` — the ``url`` column is this type's target (else it must stay empty);
      ``url_required`` — it must be set; ``url_schemes`` / ``url_kind`` — what it may be
      (``url_kind`` words the rule in error messages: "an http:// or https://");
      ``url_config_field`` — a ``provider_config`` field that may give the target instead.
    * ``signs`` — requests carry the ``method``, ``headers`` and ``signing_config`` columns
      (HTTP); other types refuse a ``signing_config``.
    """

    type: ClassVar[str]
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    fields: ClassVar[tuple[ConfigField, ...]] = ()
    uses_url: ClassVar[bool] = False
    url_required: ClassVar[bool] = False
    url_schemes: ClassVar[tuple[str, ...]] = ()
    url_kind: ClassVar[str] = ""
    url_help: ClassVar[str] = ""
    url_config_field: ClassVar[str | None] = None
    signs: ClassVar[bool] = False

    @classmethod
    def check_url(cls, url: str, config: dict, *, check_address: bool = True) -> str:
        """The ``url`` column for this type, checked; raises ConfigError naming the field.

        ``check_address`` is off when a PATCH leaves the target unchanged: a destination saved
        while private networks were allowed stays editable."""
        if not cls.uses_url:
            if url:
                raise ConfigError(
                    {"url": [f"{cls.type} destinations do not use url; their target is in provider_config."]}
                )
            return ""
        field_name, target = "url", url
        if cls.url_config_field and config.get(cls.url_config_field):
            field_name, target = f"provider_config.{cls.url_config_field}", config[cls.url_config_field]
        if not target:
            if cls.url_required:
                raise ConfigError({"url": [f"This field is required for {cls.type} destinations."]})
            return url
        control = control_character_error(target)
        if control:
            raise ConfigError({field_name: [control]})
        try:
            parts = urlsplit(target)
            hostname = parts.hostname
        except ValueError:
            raise ConfigError({field_name: ["Not a valid URL."]}) from None
        if parts.scheme not in cls.url_schemes or not hostname:
            raise ConfigError({field_name: [f"Must be {cls.url_kind} URL with a host."]})
        if check_address:
            error = literal_address_error(target)
            if error:
                raise ConfigError({field_name: [error]})
        return url

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in cls.fields if f.secret)

    @classmethod
    def validate_config(cls, config: dict, *, url: str = "", unchanged: Collection[str] = ()) -> dict:
        """Check ``config`` (plaintext secrets) and return it normalized; raise ConfigError.

        Fields named in ``unchanged`` hold the value already stored: their target address is
        not checked again (a destination saved while private networks were allowed stays
        editable)."""
        if not isinstance(config, dict):
            raise ConfigError({"provider_config": ["Must be a JSON object."]})
        errors: dict[str, list[str]] = {}
        known = {f.name for f in cls.fields}
        cleaned: dict[str, Any] = {}
        for key in config:
            if key not in known:
                errors.setdefault(f"provider_config.{key}", []).append(
                    f"Unknown field for type {cls.type!r}; allowed: {', '.join(sorted(known)) or 'none'}."
                )
        for spec in cls.fields:
            value = config.get(spec.name)
            if value is None or value == "":
                if spec.required:
                    errors.setdefault(f"provider_config.{spec.name}", []).append(
                        f"This field is required for {cls.type} destinations."
                    )
                elif spec.default is not None:
                    cleaned[spec.name] = spec.default
                continue
            if not isinstance(value, spec.kind) or (spec.kind is int and isinstance(value, bool)):
                kind = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
                names = " or ".join(
                    {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array"}.get(
                        k, k.__name__
                    )
                    for k in kind
                )
                errors.setdefault(f"provider_config.{spec.name}", []).append(f"Must be {names}.")
                continue
            if spec.choices and value not in spec.choices:
                errors.setdefault(f"provider_config.{spec.name}", []).append(
                    f"Must be one of: {', '.join(map(str, spec.choices))}."
                )
                continue
            problems = spec.errors(value, check_address=spec.name not in unchanged)
            if problems:
                errors.setdefault(f"provider_config.{spec.name}", []).extend(problems)
                continue
            cleaned[spec.name] = value
        if not errors:
            try:
                cleaned = cls.clean(cleaned, url=url)
            except ConfigError as exc:
                errors.update(exc.errors)
        if errors:
            raise ConfigError(errors)
        return cleaned

    @classmethod
    def clean(cls, config: dict, *, url: str = "") -> dict:
        return config

    def send(self, destination, message: OutboundMessage) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError


REGISTRY: dict[str, type[Provider]] = {}


def register(provider_cls: type[Provider]) -> type[Provider]:
    """Make ``provider_cls`` a destination type (a class decorator)."""
    REGISTRY[provider_cls.type] = provider_cls
    return provider_cls


def unregister(type_name: str) -> None:
    """Forget a type (tests that register a throwaway one)."""
    REGISTRY.pop(type_name, None)


def type_choices() -> list[tuple[str, str]]:
    """``(type, label)`` of every registered type: the choices of ``Destination.type``."""
    return [(name, provider.label or name) for name, provider in REGISTRY.items()]
