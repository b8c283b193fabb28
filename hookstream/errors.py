"""Domain errors: what services raise when they refuse, whoever called them.

Services know nothing of HTTP. The API's exception handler (``hookstream.api.exceptions``)
maps these to status codes and the error body of the API; the console shows them on its
forms (``hookstream.api.exceptions.error_details``); management commands print them.

Invalid input is Django's ``ValidationError`` with a ``{field: [messages]}`` dict (a 400):
it is what model and form validation raise too, so it is re-exported here rather than
wrapped.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

__all__ = ["Conflict", "DomainError", "NotFound", "ValidationError"]


class DomainError(Exception):
    """A refusal a service explains in its message (shown to the caller as it is)."""

    default_message = "The request was refused."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


class Conflict(DomainError):
    """The request conflicts with the stored state (a slug taken, a delivery on its way): 409."""

    default_message = "Conflict."


class NotFound(DomainError):
    """No such row (in the caller's organization): 404."""

    default_message = "Not found."
