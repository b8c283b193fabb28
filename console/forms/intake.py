"""Forms of the source, connection, topic and subscription pages (``console.forms.common``
says how they reach the API's serializers and services)."""

from __future__ import annotations

from django import forms

from console.forms.common import APIForm, json_field, json_text, lines
from intake.models import DedupStrategy, SourceStatus, VerificationType
from intake.serializers import FILTER_RULES_HELP, TRANSFORM_HELP
from intake.source_templates import all_source_templates, source_template

# --- sources -------------------------------------------------------------------------------


class SourceForm(APIForm):
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
        """The body a ``POST``/``PATCH /v1/sources`` would carry (of the fields that are valid)."""
        data = dict(self.cleaned_data)
        data.pop("generate_secret", None)
        for name in ("verification_type", "dedup_strategy"):
            if name in data:
                data[name] = data[name] or None
        for name in ("ip_allowlist", "ip_denylist"):
            if name in data:
                data[name] = lines(data[name])
        if not data.get("slug"):
            data.pop("slug", None)
        if not data.get("verification_secret") and (self.editing or not data.get("verification_type")):
            # Editing: empty keeps the stored secret.
            data.pop("verification_secret", None)
        if not data.get("template"):
            data.pop("template", None)
        else:
            # Left empty, these come from the template's preset.
            for name in ("name", "description", "verification_type", "verification_header", "dedup_strategy"):
                if not data.get(name):
                    data.pop(name, None)
            if not data.get("dedup_enabled"):
                data.pop("dedup_enabled", None)
        return data

    def verification_type_chosen(self) -> str:
        """The verification type typed in, else the chosen template's."""
        template = source_template(self.cleaned_data.get("template") or "")
        return self.cleaned_data.get("verification_type") or (template.verification_type if template else "") or ""


# --- connections, topics, subscriptions ------------------------------------------------------


class RouteFieldsForm(APIForm):
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
        return json_field(self.cleaned_data["filter_rules"], empty=[])

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


class TopicForm(APIForm):
    name = forms.CharField(max_length=200)
    slug = forms.CharField(
        max_length=100, required=False, help_text="Part of the publish URL; made from the name if empty."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def to_api(self) -> dict:
        data = dict(self.cleaned_data)
        if not data.get("slug"):
            data.pop("slug", None)
        return data
