"""The console's one pager: pages of a list, newest first, with "« Newer" and "Older »" links
(and "Newest" back to the first page; ``console/pages/_pager.html``).

"Older" is the API's cursor pagination (``?cursor=``: the rows strictly older than the last
row of this page). "Newer" goes the other way (``?newer=``: the rows strictly newer than the
first row of this page, read oldest first and shown newest first); when it reaches the top it
shows the first page, full. Both cursors are the API's ``(timestamp, id)`` encoding.

No COUNT(*): a page is ``limit + 1`` rows from the ``(organization, -timestamp, -id)``
indexes, however many rows the organization has, in either direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from django.contrib import messages
from django.db.models import Q
from rest_framework import exceptions

from hookstream.api.pagination import CreatedCursorPagination, decode_cursor, encode_cursor

PAGE_SIZE = 25
OLDER = "cursor"
NEWER = "newer"


@dataclass
class Page:
    rows: list
    older_query: str | None  # the query string of the next (older) page, if there is one
    newest_query: str | None  # the query string of the first page, unless this is it
    newer_query: str | None = None  # the query string of the previous (newer) page, unless this is the first


def _newer_rows(queryset, cursor: str, *, field: str, limit: int) -> tuple[list, bool]:
    """The ``limit`` rows just newer than ``cursor``, newest first, and whether even newer
    ones exist. The redundant ``>=`` is the bound the index starts from (as the API's)."""
    created, pk = decode_cursor(cursor)
    newer = queryset.filter(
        Q(**{f"{field}__gt": created}) | Q(**{field: created, "pk__gt": pk}), **{f"{field}__gte": created}
    )
    rows = list(newer.order_by(field, "pk")[: limit + 1])
    more = len(rows) > limit
    return list(reversed(rows[:limit])), more


def page_of(request, queryset, *, limit: int = PAGE_SIZE, field: str = "created_at") -> Page:
    """The page of ``queryset`` named by ``?cursor=`` (older) or ``?newer=``, newest first by
    ``field`` then id; a bad cursor shows the first page."""
    params = request.GET.copy()
    params.pop("limit", None)
    first_params = params.copy()
    first_params.pop(OLDER, None)
    first_params.pop(NEWER, None)

    rows, at_top = None, False
    if params.get(NEWER):
        try:
            rows, more = _newer_rows(queryset, params[NEWER], field=field, limit=limit)
        except exceptions.ValidationError:
            messages.warning(request, "That page link is no longer valid; showing the newest entries.")
            rows, more = None, False
        if not more:
            rows = None  # back at the top: the first page, full
    if rows is None:
        at_top = not params.get(OLDER)
        api_params = first_params.copy() if not params.get(OLDER) else params.copy()
        api_params.pop(NEWER, None)
        api_params["limit"] = str(limit)
        paginator = CreatedCursorPagination()
        # The paginator reads only ``query_params`` and the view's ``cursor_field``.
        api_request = SimpleNamespace(query_params=api_params)
        view = SimpleNamespace(cursor_field=field, check_query_params=False)
        try:
            rows = paginator.paginate_queryset(queryset, api_request, view)
        except exceptions.ValidationError:
            messages.warning(request, "That page link is no longer valid; showing the newest entries.")
            api_params.pop(OLDER, None)
            at_top = True
            rows = paginator.paginate_queryset(queryset, api_request, view)
        has_older = paginator.next_cursor is not None
    else:
        has_older = True  # the page this one was reached from

    older = newer = newest = None
    if rows and has_older:
        older_params = first_params.copy()
        older_params[OLDER] = encode_cursor(getattr(rows[-1], field), rows[-1].pk)
        older = older_params.urlencode()
    if not at_top:
        newest = first_params.urlencode()
        if rows:
            newer_params = first_params.copy()
            newer_params[NEWER] = encode_cursor(getattr(rows[0], field), rows[0].pk)
            newer = newer_params.urlencode()
    return Page(rows=rows, older_query=older, newest_query=newest, newer_query=newer)
