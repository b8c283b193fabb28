"""Helpers shared by the operator management commands."""

import sys
from datetime import datetime

from django.core.management.base import CommandError
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from hookstream.models import Organization


def organization_lookup(value: str) -> Organization:
    org = Organization.objects.filter(Q(pk=value) | Q(slug=value)).first()
    if org is None:
        raise CommandError(f"No organization with id or slug {value!r}.")
    return org


def parse_when(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"{option}: {value!r} is not an ISO 8601 date-time (e.g. 2026-01-31T12:00:00Z).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.utc)
    return parsed


def progress(done: int, total: int, label: str = "", stream=None) -> None:
    """One self-overwriting progress line on stderr."""
    stream = stream or sys.stderr
    width = 30
    filled = int(width * done / total) if total else width
    stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        stream.write("\n")
    stream.flush()
