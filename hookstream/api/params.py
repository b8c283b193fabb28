"""No silently ignored query parameter: a list answers 400 naming a parameter it does not know.

Every list endpoint pages through ``CreatedCursorPagination``, which calls
``query_params_check``; the parameters a view accepts are ``cursor`` and ``limit``, its
filterset's filters and the names in its ``query_params`` attribute.
"""

from __future__ import annotations

from rest_framework import exceptions

PAGINATION_PARAMS = ("cursor", "limit")


def allowed_query_params(view) -> set[str]:
    allowed = set(PAGINATION_PARAMS) | set(getattr(view, "query_params", ()))
    filterset_class = getattr(view, "filterset_class", None)
    if filterset_class is not None:
        allowed |= set(filterset_class.base_filters)
    return allowed


def query_params_check(request, view) -> None:
    """Raise a 400 naming every query parameter ``view`` does not accept."""
    allowed = allowed_query_params(view)
    unknown = sorted(set(request.query_params) - allowed)
    if not unknown:
        return
    accepted = ", ".join(sorted(allowed))
    details = {}
    for name in unknown:
        hint = ""
        if name in ("offset", "page"):
            hint = " Lists are paged with cursor (from the previous page), not offsets."
        details[name] = [f"Unknown query parameter {name!r}; this list accepts: {accepted}.{hint}"]
    raise exceptions.ValidationError(details)
