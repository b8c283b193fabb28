"""Reads of destinations: the scoped list with delivery counts, and decrypted configs."""

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from destinations.models import CircuitState, Destination
from destinations.providers import get_provider
from destinations.signing import SECRET_FIELDS as SIGNING_SECRET_FIELDS
from hookstream import crypto
from hookstream.headers import mask_headers


def destinations_for_organization(*, organization) -> QuerySet[Destination]:
    """The organization's live destinations, each annotated with ``delivery_count``.

    The count is a correlated subquery rather than a JOIN + GROUP BY, so a page of the list
    is one query and no JSON column is grouped on. On PostgreSQL it sums the destination's
    rows of ``DestinationDeliveryCount`` (kept by triggers): a few rows per destination,
    whatever the number of deliveries. Elsewhere it counts the deliveries (index-only).
    """
    from deliveries.models import Delivery, DestinationDeliveryCount

    if connection.vendor == "postgresql":
        counts = (
            DestinationDeliveryCount.objects.filter(destination_id=OuterRef("pk"))
            .order_by()
            .values("destination_id")
            .annotate(total=Sum("n"))
            .values("total")
        )
    else:
        counts = (
            Delivery.objects.filter(destination=OuterRef("pk"))
            .order_by()
            .values("destination")
            .annotate(n=Count("*"))  # COUNT(*): an index-only scan, no heap fetch per delivery
            .values("n")
        )
    return Destination.objects.filter(organization=organization).annotate(
        delivery_count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
    )


def destination_get(*, organization, destination_id: str) -> Destination:
    """One live destination of ``organization`` (with ``delivery_count``); 404 otherwise."""
    destination = destinations_for_organization(organization=organization).filter(pk=destination_id).first()
    if destination is None:
        raise Http404("No such destination.")
    return destination


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
