"""Forms of the events, sources, connections, topics and API key pages.

A form only turns HTML input into the dict the REST API would receive (checkboxes into
booleans, textareas into lists and JSON). That dict then goes through the API's own write
serializer (field shapes) and the service (rules across fields and rows), exactly as a
``POST /v1/…`` would; ``call_service`` puts what either of them refuses beside the form's
fields, so the console never re-implements a rule.
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions as drf_exceptions

from hookstream.api.exceptions import Conflict, _flatten_details
from intake.models import DedupStrategy, SourceStatus, VerificationType
from intake.serializers import FILTER_RULES_HELP, TRANSFORM_HELP
from intake.source_templates import all_source_templates, source_template


class ServiceRefused(Exception):
    """The serializer or the service refused the input; the errors are on the form."""


def _error_dict(exc) -> dict[str, list[str]]:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
        return {"non_field_errors": [str(m) for m in exc.messages]}
    return _flatten_details(exc.detail)


def add_errors(form: forms.Form, errors: dict[str, list[str]]) -> None:
    """Put ``{field: [messages]}`` beside the form's fields; others go to the top of the form."""
    for field, messages in errors.items():
        # A list item's error comes as "ip_allowlist.3": it belongs beside "ip_allowlist".
        name, _, item = field.partition(".")
        target = name if name in form.fields else None
        for message in messages:
            if target is None and field != "non_field_errors":
                message = f"{field}: {message}"
            elif item:
                message = f"Entry {int(item) + 1 if item.isdigit() else item}: {message}"
            form.add_error(target, message)


def call_service(form: forms.Form, service, *, serializer_class=None, data: dict, conflict_field: str | None = None):
    """Validate ``data`` with the API's write serializer, then call ``service(data)``.

    Returns what the service returns; raises ``ServiceRefused`` after adding the errors to
    ``form`` when the serializer or the service says no (400 and 409 alike).
    """
    try:
        if serializer_class is not None:
            payload = serializer_class(data=data)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
        return service(data)
    except (DjangoValidationError, drf_exceptions.ValidationError) as exc:
        add_errors(form, _error_dict(exc))
    except Conflict as exc:
        form.add_error(conflict_field, str(exc.detail))
    raise ServiceRefused()


def _lines(value: str) -> list[str]:
    """One entry per line (commas separate too); blanks dropped."""
    return [part.strip() for line in value.splitlines() for part in line.split(",") if part.strip()]


def _json_field(value: str, empty):
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


# --- sources -------------------------------------------------------------------------------


class SourceForm(forms.Form):
    template = forms.ChoiceField(
        choices=[("", "None"), *((t.id, t.name) for t in all_source_templates())],
        required=False,
        label="Sender",
        help_text="Fills the verification and dedup preset and the setup steps of this sender; fields you fill in win.",
    )
    name = forms.CharField(max_length=200, required=False, help_text="The sender's name if empty.")
    slug = forms.CharField(
        max_length=100, required=False, help_text="Lowercase letters, digits and hyphens; made from the name if empty."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    status = forms.ChoiceField(choices=SourceStatus.choices, initial=SourceStatus.ACTIVE)
    verification_type = forms.ChoiceField(
        choices=[("", "None (accept unsigned requests)"), *VerificationType.choices], required=False
    )
    verification_secret = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again; standard_webhooks secrets start with whsec_.",
    )
    generate_secret = forms.BooleanField(
        required=False,
        label="Generate a secret for me",
        help_text="A random secret of the chosen type, shown once after saving for you to give the sender.",
    )
    verification_header = forms.CharField(
        required=False, max_length=200, help_text="HMAC: the signature header (default X-Hub-Signature-256)."
    )
    verification_prefix = forms.CharField(required=False, max_length=50, help_text='HMAC: e.g. "sha256=".')
    dedup_enabled = forms.BooleanField(required=False, label="Deduplicate repeated requests")
    dedup_strategy = forms.ChoiceField(choices=[("", "—"), *DedupStrategy.choices], required=False)
    dedup_field = forms.CharField(
        required=False, max_length=200, help_text="header_field: a header name; body_field: a path such as data.id."
    )
    dedup_window_seconds = forms.IntegerField(initial=300, help_text="1 second to 7 days.")
    ip_allowlist = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="IP allowlist",
        help_text="Addresses or CIDRs, one per line; empty allows every address.",
    )
    ip_denylist = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="IP denylist",
        help_text="Wins over the allowlist.",
    )

    def __init__(self, *args, stored_secret_mask: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = stored_secret_mask is not None
        if stored_secret_mask:
            self.fields[
                "verification_secret"
            ].help_text = f"Stored: {stored_secret_mask}. Leave empty to keep it; type a new one to replace it."

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("name") and not cleaned.get("template"):
            self.add_error("name", "This field is required.")
        if cleaned.get("generate_secret"):
            if not self.verification_type_chosen():
                self.add_error("generate_secret", "Choose a verification type first.")
            elif cleaned.get("verification_secret"):
                self.add_error("generate_secret", "Type a secret or generate one, not both.")
        return cleaned

    @classmethod
    def initial_from(cls, source) -> dict:
        initial = {
            name: getattr(source, name)
            for name in cls.base_fields
            if name not in ("verification_secret", "generate_secret")
        }
        initial["verification_type"] = source.verification_type or ""
        initial["dedup_strategy"] = source.dedup_strategy or ""
        initial["ip_allowlist"] = "\n".join(source.ip_allowlist or [])
        initial["ip_denylist"] = "\n".join(source.ip_denylist or [])
        return initial

    def to_api(self) -> dict:
        """The body a ``POST``/``PATCH /v1/sources`` would carry."""
        data = dict(self.cleaned_data)
        data.pop("generate_secret")
        data["verification_type"] = data["verification_type"] or None
        data["dedup_strategy"] = data["dedup_strategy"] or None
        data["ip_allowlist"] = _lines(data["ip_allowlist"])
        data["ip_denylist"] = _lines(data["ip_denylist"])
        if not data["slug"]:
            data.pop("slug")
        if not data["verification_secret"] and (self.editing or not data["verification_type"]):
            # Editing: empty keeps the stored secret.
            data.pop("verification_secret")
        if not data["template"]:
            data.pop("template")
        else:
            # Left empty, these come from the template's preset.
            for name in ("name", "description", "verification_type", "verification_header", "dedup_strategy"):
                if not data[name]:
                    data.pop(name)
            if not data["dedup_enabled"]:
                data.pop("dedup_enabled")
        return data

    def verification_type_chosen(self) -> str:
        """The verification type typed in, else the chosen template's."""
        template = source_template(self.cleaned_data.get("template") or "")
        return self.cleaned_data.get("verification_type") or (template.verification_type if template else "") or ""


# --- connections, topics, subscriptions ------------------------------------------------------


class RouteFieldsForm(forms.Form):
    filter_rules = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text='A JSON list, e.g. [{"field": "payload.type", "op": "eq", "value": "order.created"}]. '
        + FILTER_RULES_HELP,
    )
    transform_expression = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=TRANSFORM_HELP + ' e.g. {"order": id, "total": amount}',
    )

    def clean_filter_rules(self):
        return _json_field(self.cleaned_data["filter_rules"], empty=[])

    @staticmethod
    def route_initial(route) -> dict:
        return {"filter_rules": json_text(route.filter_rules), "transform_expression": route.transform_expression}


class ConnectionForm(RouteFieldsForm):
    name = forms.CharField(max_length=200, required=False)
    source_id = forms.ChoiceField(label="Source")
    destination_id = forms.ChoiceField(label="Destination")
    enabled = forms.BooleanField(required=False, initial=True)

    field_order = ["name", "source_id", "destination_id", "filter_rules", "transform_expression", "enabled"]

    def __init__(self, *args, sources, destinations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source_id"].choices = [("", "Choose a source"), *sources]
        self.fields["destination_id"].choices = [("", "Choose a destination"), *destinations]

    @classmethod
    def initial_from(cls, connection) -> dict:
        return {
            "name": connection.name,
            "source_id": connection.source_id,
            "destination_id": connection.destination_id,
            "enabled": connection.enabled,
            **cls.route_initial(connection),
        }


class SubscriptionForm(RouteFieldsForm):
    destination_id = forms.ChoiceField(label="Destination")

    field_order = ["destination_id", "filter_rules", "transform_expression"]

    def __init__(self, *args, destinations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["destination_id"].choices = [("", "Choose a destination"), *destinations]


class TopicForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.CharField(
        max_length=100, required=False, help_text="Part of the publish URL; made from the name if empty."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def to_api(self) -> dict:
        data = dict(self.cleaned_data)
        if not data["slug"]:
            data.pop("slug")
        return data


# --- API keys --------------------------------------------------------------------------------


class APIKeyForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What uses the key, e.g. deploy bot.")


# --- events ----------------------------------------------------------------------------------


class EventFilterForm(forms.Form):
    """The GET form above the event list; unknown values are simply not offered."""

    status = forms.ChoiceField(required=False)
    source_id = forms.ChoiceField(required=False, label="Source")
    destination_id = forms.ChoiceField(required=False, label="Destination")

    def __init__(self, *args, statuses, sources, destinations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *((s, s.replace("_", " ")) for s in statuses)]
        self.fields["source_id"].choices = [("", "Any source"), *sources]
        self.fields["destination_id"].choices = [("", "Any destination"), *destinations]
