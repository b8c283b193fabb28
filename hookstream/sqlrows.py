"""Multi-row ``INSERT`` statements built from a model's fields, for the write paths where a
model object per row and Django's INSERT compiler cost more than the database does (ingest:
an event and its deliveries, written in one statement by ``deliveries.fanout``).

The statement names every concrete column, so a field added to the model later is written
with its default without touching the callers; values are prepared exactly as the ORM
prepares them (``get_db_prep_save``: JSON, binary, dates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db import connection as default_connection
from django.db.models import Field, Model
from django.db.models.expressions import DatabaseDefault

# Fields whose database value is the Python value itself when it has the field's own type
# (``get_db_prep_save`` would only hand it back): most of a row, spared the ORM's preparation.
_PLAIN_TYPES: tuple[tuple[type[Field], type], ...] = (
    (models.CharField, str),
    (models.TextField, str),
    (models.BooleanField, bool),
    (models.IntegerField, int),
)


def _plain_type(field: Field) -> type | None:
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if type(target).get_db_prep_save is not Field.get_db_prep_save:
        return None
    return next((kind for base, kind in _PLAIN_TYPES if isinstance(target, base)), None)


@dataclass(frozen=True)
class _Column:
    field: Field
    attname: str
    # Stamped with the time of writing (``auto_now``/``auto_now_add``).
    stamped: bool
    # See _PLAIN_TYPES.
    plain: type | None


@cache
def _columns(model: type[Model]) -> tuple[tuple[_Column, ...], str]:
    """The model's concrete columns and the head of its INSERT statement."""
    quote = default_connection.ops.quote_name
    columns = []
    for field in model._meta.concrete_fields:
        columns.append(
            _Column(
                field=field,
                attname=field.attname,
                stamped=bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)),
                plain=_plain_type(field),
            )
        )
    names = ", ".join(quote(column.field.column) for column in columns)
    return tuple(columns), f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES "


def instance_row(instance: Model) -> dict[str, Any]:
    """The field values of an unsaved model object, by attribute name (``event_id``)."""
    return {column.attname: getattr(instance, column.attname) for column in _columns(type(instance))[0]}


def insert_sql(model: type[Model], rows: Sequence[Mapping[str, Any]], *, now: datetime) -> tuple[str, list[Any]]:
    """``INSERT INTO <table> (<every column>) VALUES (…), (…)`` for ``rows``, and its parameters
    (for the default database).

    Each row gives values by attribute name; a field it leaves out takes its default (a
    callable default is called per row, as ``Model()`` would), or the database's
    (``db_default``), and an ``auto_now`` field takes ``now``.
    """
    columns, head = _columns(model)
    # The connection itself, not the thread-local proxy each field would look it up through.
    connection = connections[DEFAULT_DB_ALIAS]
    params: list[Any] = []
    groups = []
    for row in rows:
        marks = []
        for column in columns:
            if column.attname in row:
                value = row[column.attname]
            elif column.stamped:
                value = now
            else:
                value = column.field.get_default()
            if isinstance(value, DatabaseDefault):
                marks.append("DEFAULT")
                continue
            if value is None or type(value) is column.plain:
                params.append(value)
            else:
                params.append(column.field.get_db_prep_save(value, connection))
            marks.append("%s")
        groups.append(f"({', '.join(marks)})")
    return head + ", ".join(groups), params
