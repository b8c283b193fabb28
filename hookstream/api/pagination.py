"""Cursor pagination, newest first, keyed on ``(created_at, id)`` (a view may name another
timestamp in ``cursor_field``).

The cursor names the last row of the page; the next page is every row strictly older in
``(created_at, id)`` order. Rows inserted while a client pages are newer than the cursor and
so never shift a later page: no duplicates, no gaps. A ``limit`` outside 1..100 is a 400.

No page counts rows (no ``COUNT(*)``): ``has_more`` comes from fetching one row more than the
page. With an index on (organization, timestamp desc, id desc) every page, however deep,
reads about ``limit`` index entries.
"""

import base64
import binascii
import re
from datetime import datetime

from django.db.models import Q
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from hookstream.api.params import query_params_check

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_PK_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def encode_cursor(created_at: datetime, pk: str) -> str:
    raw = f"{created_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        # Only an id can follow: anything else (a NUL byte reaches PostgreSQL as an error) is
        # a forged cursor, not a page.
        if not CURSOR_PK_RE.fullmatch(pk):
            raise ValueError(pk)
        return datetime.fromisoformat(created), pk
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from None


def parse_limit(request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise exceptions.ValidationError({"limit": ["Must be an integer between 1 and 100."]}) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise exceptions.ValidationError({"limit": ["Must be an integer between 1 and 100."]})
    return limit


class CreatedCursorPagination(BasePagination):
    """The envelope is ``{"<plural>": [...], "cursor": ..., "has_more": ...}``; the view names
    the plural in ``pagination_key``."""

    ordering_field = "created_at"
    # Set per request from the view (and by hookstream.api.schema for the OpenAPI document).
    key = "results"

    def paginate_queryset(self, queryset, request, view=None):
        self.key = getattr(view, "pagination_key", "results")
        # An API list answers 400 for a parameter it does not know; the console pages its own
        # filter forms (its views say so with ``check_query_params = False``).
        if view is not None and getattr(view, "check_query_params", True):
            query_params_check(request, view)
        limit = parse_limit(request)
        cursor = request.query_params.get("cursor")
        field = getattr(view, "cursor_field", self.ordering_field)
        if cursor:
            created, pk = decode_cursor(cursor)
            # The redundant ``<=`` is the bound an index on (…, field, id) can start from; the
            # OR alone is only a filter, and a deep page would read every newer row first.
            queryset = queryset.filter(
                Q(**{f"{field}__lt": created}) | Q(**{field: created, "pk__lt": pk}), **{f"{field}__lte": created}
            )
        rows = list(queryset.order_by(f"-{field}", "-pk")[: limit + 1])
        self.has_more = len(rows) > limit
        rows = rows[:limit]
        self.next_cursor = encode_cursor(getattr(rows[-1], field), rows[-1].pk) if self.has_more else None
        return rows

    def get_paginated_response(self, data):
        return Response({self.key: data, "cursor": self.next_cursor, "has_more": self.has_more})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": [self.key, "cursor", "has_more"],
            "properties": {
                self.key: schema,
                "cursor": {"type": "string", "nullable": True, "description": "Pass as ?cursor= for the next page."},
                "has_more": {"type": "boolean"},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "The cursor of the previous page.",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "Page size, 1–100; outside that range answers 400.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
        ]
