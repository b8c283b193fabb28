"""What every console form shares: the way to the API's serializer and service, and back.

A form only turns HTML input into the dict the REST API would receive (checkboxes into
booleans, textareas into lists and JSON). That dict then goes through the API's own write
serializer (field shapes) and the service (rules across fields and rows), exactly as a
``POST /v1/…`` would; ``call_service`` puts what either of them refuses beside the form's
fields, so the console never re-implements a rule.
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions as drf_exceptions

from hookstream.api.exceptions import error_details
from hookstream.errors import Conflict


class ServiceRefused(Exception):
    """The serializer or the service refused the input; the errors are on the form."""


class APIForm(forms.Form):
    """A form standing for an API request body."""

    def to_api(self) -> dict:
        """The body the API would receive (after ``is_valid()``)."""
        return dict(self.cleaned_data)

    def place_error(self, path: str, message: str) -> tuple[str | None, str]:
        """Where an API error of ``path`` goes, and its words: beside the field it names (a
        list item's "ip_allowlist.3" beside "ip_allowlist"), else at the top with its path."""
        name, _, item = path.partition(".")
        if name in self.fields:
            if item:
                message = f"Entry {int(item) + 1 if item.isdigit() else item}: {message}"
            return name, message
        if path != "non_field_errors":
            message = f"{path}: {message}"
        return None, message

    def add_api_errors(self, errors: dict[str, list[str]], *, only_new: bool = False) -> None:
        """Put ``{path: [messages]}`` beside the form's fields (``place_error``); with
        ``only_new``, not beside a field that already shows an error."""
        for path, messages in errors.items():
            for message in messages:
                field, words = self.place_error(path, message)
                if only_new and field is not None and field in self.errors:
                    continue
                if words in self.errors.get(field or NON_FIELD_ERRORS, []):
                    continue  # found by two checks: said once
                self.add_error(field, words)


def call_service(form: APIForm, service, *, serializer_class=None, data: dict, conflict_field: str | None = None):
    """Validate ``data`` with the API's write serializer, then call ``service(data)``.

    Returns what the service returns; raises ``ServiceRefused`` after adding the errors to
    ``form`` when the serializer or the service says no (400 and 409 alike), or when the form
    already carries errors found while building ``data``.
    """
    if form.errors:
        raise ServiceRefused()
    try:
        if serializer_class is not None:
            payload = serializer_class(data=data)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
        return service(data)
    except (DjangoValidationError, drf_exceptions.ValidationError) as exc:
        form.add_api_errors(error_details(exc))
    except Conflict as exc:
        form.add_error(conflict_field, str(exc))
    raise ServiceRefused()


def check_the_rest(form: APIForm, serializer_class) -> None:
    """On a form that already has errors: add what the API's write serializer says about its
    other fields, so that one submit reports every error found without saving anything."""
    payload = serializer_class(data=form.to_api(), partial=True)
    if not payload.is_valid():
        form.add_api_errors(error_details(drf_exceptions.ValidationError(payload.errors)), only_new=True)


def lines(value: str) -> list[str]:
    """One entry per line (commas separate too); blanks dropped."""
    return [part.strip() for line in value.splitlines() for part in line.split(",") if part.strip()]


def json_field(value: str, empty):
    text = (value or "").strip()
    if not text:
        return empty
    try:
        return json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc}.", code="json") from None
    except RecursionError:
        raise forms.ValidationError("Not valid JSON: nested too deeply.", code="json") from None


def json_text(value) -> str:
    """A JSON value as the textarea shows it: indented, empty for nothing."""
    return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
