"""The console's one pager: pages of a list, newest first, with "Older" and "Newest" links
(``console/pages/_pager.html``) — the API's cursor pagination.

No COUNT(*): a page is ``limit + 1`` rows from the ``(organization, -created_at, -id)``
indexes, however many rows the organization has.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from django.contrib import messages
from rest_framework import exceptions

from hookstream.api.pagination import CreatedCursorPagination

PAGE_SIZE = 25


@dataclass
class Page:
    rows: list
    older_query: str | None  # the query string of the next (older) page, if there is one
    newest_query: str | None  # the query string of the first page, unless this is it


def page_of(request, queryset, *, limit: int = PAGE_SIZE) -> Page:
    """The page of ``queryset`` named by ``?cursor=`` (a bad cursor shows the first page)."""
    params = request.GET.copy()
    params["limit"] = str(limit)
    paginator = CreatedCursorPagination()
    # The paginator reads only ``query_params``.
    api_request = SimpleNamespace(query_params=params)
    try:
        rows = paginator.paginate_queryset(queryset, api_request)
    except exceptions.ValidationError:
        messages.warning(request, "That page link is no longer valid; showing the newest entries.")
        params.pop("cursor", None)
        rows = paginator.paginate_queryset(queryset, api_request)
    params.pop("limit", None)
    older = newest = None
    if paginator.next_cursor:
        older_params = params.copy()
        older_params["cursor"] = paginator.next_cursor
        older = older_params.urlencode()
    if "cursor" in params:
        params.pop("cursor")
        newest = params.urlencode()
    return Page(rows=rows, older_query=older, newest_query=newest)
