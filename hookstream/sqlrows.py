"""Multi-row ``INSERT`` statements built from a model's fields, for the write paths where a
model object per row and Django's INSERT compiler cost more than the database does (ingest:
an event and its deliveries, written in one statement by ``deliveries.fanout``).

The statement names every concrete column, so a field added to the model later is written
with its default without touching the callers; values are prepared exactly as the ORM
prepares them (``get_db_prep_save``: JSON, binary, dates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection as default_connection
from django.db.models import Field, Model
from django.db.models.expressions import DatabaseDefault


@cache
def _fields(model: type[Model]) -> tuple[tuple[Field, bool], ...]:
    """The model's concrete fields, each with whether it is stamped with the time of writing
    (``auto_now``/``auto_now_add``)."""
    return tuple(
        (field, bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)))
        for field in model._meta.concrete_fields
    )


def instance_row(instance: Model) -> dict[str, Any]:
    """The field values of an unsaved model object, by attribute name (``event_id``)."""
    return {field.attname: getattr(instance, field.attname) for field, _ in _fields(type(instance))}


def insert_sql(
    model: type[Model], rows: Sequence[Mapping[str, Any]], *, now: datetime, connection=default_connection
) -> tuple[str, list[Any]]:
    """``INSERT INTO <table> (<every column>) VALUES (…), (…)`` for ``rows``, and its parameters.

    Each row gives values by attribute name; a field it leaves out takes its default (a
    callable default is called per row, as ``Model()`` would), or the database's
    (``db_default``), and an ``auto_now`` field takes ``now``.
    """
    fields = _fields(model)
    quote = connection.ops.quote_name
    params: list[Any] = []
    groups = []
    for row in rows:
        marks = []
        for field, stamped in fields:
            if field.attname in row:
                value = row[field.attname]
            elif stamped:
                value = now
            else:
                value = field.get_default()
            if isinstance(value, DatabaseDefault):
                marks.append("DEFAULT")
                continue
            params.append(field.get_db_prep_save(value, connection))
            marks.append("%s")
        groups.append(f"({', '.join(marks)})")
    columns = ", ".join(quote(field.column) for field, _ in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join(groups)}", params
