"""Reads of destinations: the scoped list, operator lookups, circuits, decrypted configs.

The list with delivery counts is ``deliveries.selectors.destinations_with_delivery_counts``.
"""

from django.db.models import Q, QuerySet
from django.http import Http404

from destinations.models import CircuitState, CircuitStateValue, Destination
from destinations.providers import get_provider
from destinations.signing import SECRET_FIELDS as SIGNING_SECRET_FIELDS
from hookstream import crypto
from hookstream.errors import NotFound
from hookstream.headers import mask_headers
from hookstream.models import Organization


def destinations_for_organization(*, organization: Organization) -> QuerySet[Destination]:
    """The organization's live destinations (``deliveries.selectors`` adds their delivery counts)."""
    return Destination.objects.filter(organization=organization)


def destination_get(*, organization: Organization, destination_id: str) -> Destination:
    """One live destination of ``organization``; 404 otherwise."""
    destination = destinations_for_organization(organization=organization).filter(pk=destination_id).first()
    if destination is None:
        raise Http404("No such destination.")
    return destination


def destination_lookup(value: str, org: str | None = None) -> Destination:
    """The destination an operator names by id or slug (``--org``: an organization's id or
    slug, needed when several organizations use the slug); ``NotFound`` otherwise."""
    rows = Destination.objects.filter(Q(pk=value) | Q(slug=value))
    if org:
        organization = Organization.objects.filter(Q(pk=org) | Q(slug=org)).first()
        if organization is None:
            raise NotFound(f"No organization with id or slug {org!r}.")
        rows = rows.filter(organization=organization)
    found = list(rows[:2])
    if not found:
        raise NotFound(f"No destination with id or slug {value!r}.")
    if len(found) > 1:
        raise NotFound(f"Slug {value!r} is used by several organizations; pass --org or the destination id.")
    return found[0]


def destination_circuit(*, destination: Destination) -> CircuitState:
    """The destination's circuit; an unsaved closed one if the row is missing (rows made
    before the circuit existed)."""
    circuit = CircuitState.objects.filter(destination=destination).first()
    return circuit or CircuitState(destination=destination)


def _masked(config: dict, fields) -> dict:
    try:
        masked = crypto.mask_fields(config, fields)
    except ValueError:
        # Encrypted with another HOOKSTREAM_ENCRYPTION_KEY: show the mask, never a 500.
        masked = dict(config)
        for field in fields:
            if masked.get(field):
                masked[field] = crypto.MASK
    for field in fields:
        # A secret stored as an object (never by the API, which stores strings) is hidden whole.
        if masked.get(field) and not isinstance(masked[field], str):
            masked[field] = crypto.MASK
    return masked


def destination_provider_config(destination: Destination) -> dict:
    """The decrypted ``provider_config`` (what a provider sends with). Never render it."""
    fields = get_provider(destination.type).secret_fields()
    return crypto.decrypt_fields(destination.provider_config or {}, fields)


def destination_signing_config(destination: Destination) -> dict | None:
    """The decrypted ``signing_config``, or None when the destination does not sign."""
    if not destination.signing_config:
        return None
    return crypto.decrypt_fields(destination.signing_config, SIGNING_SECRET_FIELDS)


def masked_provider_config(destination: Destination) -> dict:
    """``provider_config`` as every response shows it: secrets as ``****`` + last 4, and
    credential values of its header objects masked (``Authorization: Bearer ****abcd``)."""
    provider = get_provider(destination.type)
    masked = _masked(destination.provider_config or {}, provider.secret_fields())
    for spec in provider.fields:
        if spec.headers and isinstance(masked.get(spec.name), dict):
            masked[spec.name] = mask_headers({str(k): str(v) for k, v in masked[spec.name].items()})
    return masked


def masked_headers(destination: Destination) -> dict[str, str]:
    """The destination's ``headers`` as every response shows them: credentials masked."""
    return mask_headers({str(k): str(v) for k, v in (destination.headers or {}).items()})


def masked_signing_config(destination: Destination) -> dict | None:
    if not destination.signing_config:
        return None
    return _masked(destination.signing_config, SIGNING_SECRET_FIELDS)


def destination_choices(*, organization) -> list[tuple[str, str]]:
    """``[(id, name)]`` of the organization's live destinations, by name (no count computed)."""
    return list(Destination.objects.filter(organization=organization).order_by("name", "id").values_list("id", "name"))


def destination_names(*, organization, destination_ids) -> dict[str, str]:
    """``{id: name}`` of these destinations of ``organization``, deleted ones too (their
    deliveries stay in the history)."""
    return dict(
        Destination.all_objects.filter(organization=organization, pk__in=set(destination_ids)).values_list("id", "name")
    )


def circuits_not_closed(*, organization) -> QuerySet[CircuitState]:
    """The open and half-open circuits of the organization's live destinations, latest opened first."""
    return (
        CircuitState.objects.select_related("destination")
        .filter(
            destination__organization=organization,
            destination__deleted_at__isnull=True,
            state__in=[CircuitStateValue.OPEN, CircuitStateValue.HALF_OPEN],
        )
        .order_by("-opened_at")
    )
