"""The destination form of the console: one form per destination type.

The form turns HTML input into the dict ``POST /v1/destinations`` (or a PATCH) would receive;
that dict goes through the API's write serializer and then ``destinations.services``, so the
console applies exactly the API's rules. What either refuses comes back as ``{path: [messages]}``
(``provider_config.url``, ``signing_config.secret``, ``retry_intervals.0``…) and is put beside
the matching field; what matches no field is shown at the top of the form.

The provider fields come from each provider's ``ConfigField`` list, prefixed ``cfg_``. Secret
fields are password inputs; on edit they hold the masked value (``****`` + last 4), which the
service recognises and replaces by the stored secret, so an untouched secret is kept.

Fields that belong to one HTTP auth type or one signing mode carry ``data-show-when`` (the
field deciding) and ``data-show-values`` on the page; ``forms.js`` hides them while another
type or mode is chosen. Without JavaScript every field shows, and the values of the other auth
types are not sent (on edit they are removed), as the signing fields of other modes are not.

A refused submit reports every error at once: besides the form's own checks and the API's
serializer (``check_the_rest``), ``check_rules`` runs the service's and the provider's checks
(template blanks, the target URL, the provider's fields and its rules across fields, the
signing config) on whatever is valid, so that no error waits for the next submit.
"""

from __future__ import annotations

import json

from django import forms

from console.forms.common import APIForm
from destinations import selectors, services
from destinations.models import BackoffType, Destination, DestinationStatus, HttpMethod
from destinations.providers import REGISTRY, get_provider
from destinations.providers.base import ConfigError
from destinations.providers.http import mask_headers
from destinations.signing import (
    ALGORITHMS,
    DEFAULT_HEADER,
    MODE_HMAC,
    MODE_STANDARD_WEBHOOKS,
    SigningConfigError,
    validate_signing_config,
)
from templates_catalog.catalog import template_defaults, template_placeholders

CONFIG_PREFIX = "cfg_"
SIGNING_NONE = "none"
# Each type's label and description, as its provider declares them.
TYPE_LABELS = {name: provider.label or name for name, provider in REGISTRY.items()}
TYPE_DESCRIPTIONS = {name: provider.description for name, provider in REGISTRY.items()}
# HTTP provider fields used by one auth type only (``HttpProvider.clean`` asks for the first
# ones; the header name goes with the API key).
AUTH_TYPE_FIELDS = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "api_key": ("api_key_header", "api_key"),
}
# Signing fields used by some modes only: {field: modes}.
SIGNING_MODE_FIELDS = {
    "signing_secret": (MODE_HMAC, MODE_STANDARD_WEBHOOKS),
    "signing_algorithm": (MODE_HMAC,),
    "signing_header": (MODE_HMAC,),
    "signing_prefix": (MODE_HMAC,),
    "signing_include_timestamp": (MODE_HMAC,),
}
# How the fields are grouped on the page: (legend, field names; cfg_* and signing_* are added).
GROUPS = (
    ("Destination", ("name", "slug", "status")),
    ("Target", ("url", "method", "headers", "timeout_ms")),
    ("Provider settings", ()),
    ("Signing", ()),
    (
        "Retry policy",
        ("retry_max_attempts", "retry_backoff_type", "retry_intervals", "retry_jitter"),
    ),
    (
        "Circuit breaker and limits",
        (
            "circuit_breaker_enabled",
            "circuit_breaker_threshold",
            "circuit_breaker_reset_ms",
            "max_concurrency",
            "rate_limit_per_second",
        ),
    ),
)


# Words shown in capitals in field labels.
_ACRONYMS = {"api": "API", "url": "URL", "id": "ID", "json": "JSON", "arn": "ARN", "rest": "REST", "vhost": "Vhost"}


def config_label(name: str) -> str:
    """A provider field's label: ``api_key_header`` → "API key header"."""
    words = [_ACRONYMS.get(word, word) for word in name.split("_")]
    label = " ".join(words)
    return label[0].upper() + label[1:]


def _join(*parts: str) -> str:
    return " ".join(part.rstrip(".") + "." for part in parts if part)


def _header_lines(headers: dict) -> str:
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


class DestinationForm(APIForm):
    name = forms.CharField(max_length=200)
    slug = forms.CharField(
        max_length=100, required=False, help_text="Lowercase letters, digits and hyphens; made from the name if empty."
    )
    status = forms.ChoiceField(choices=DestinationStatus.choices)
    url = forms.CharField(max_length=2048, required=False, label="URL")
    method = forms.ChoiceField(choices=[(m, m) for m in HttpMethod.values])
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "X-Custom: value"}),
        help_text="One “Name: value” per line.",
    )
    timeout_ms = forms.IntegerField(label="Timeout (ms)", help_text="100–120000.")
    retry_max_attempts = forms.IntegerField(label="Retries", help_text="Retries after the first attempt (1–10).")
    retry_backoff_type = forms.ChoiceField(label="Backoff", choices=BackoffType.choices)
    retry_intervals = forms.CharField(
        label="Retry intervals (s)",
        help_text="Comma-separated seconds, e.g. 30, 300, 1800. Exponential uses the Nth for retry N; "
        "linear and fixed use the first.",
    )
    retry_jitter = forms.BooleanField(label="Jitter (wait × 0.8–1.2)", required=False)
    circuit_breaker_enabled = forms.BooleanField(label="Circuit breaker on", required=False)
    circuit_breaker_threshold = forms.IntegerField(label="Open after failures", help_text="Consecutive failures.")
    circuit_breaker_reset_ms = forms.IntegerField(
        label="Probe after (ms)", help_text="How long the circuit stays open before one probe."
    )
    max_concurrency = forms.IntegerField(label="Max concurrency", required=False, help_text="Empty: unlimited.")
    rate_limit_per_second = forms.IntegerField(
        label="Rate limit (per second)", required=False, help_text="Empty: unlimited."
    )

    def __init__(self, *args, type_: str, destination: Destination | None = None, template=None, **kwargs):
        """``destination`` edits a row; ``template`` (a catalog Template) pre-fills a new one."""
        self.type = type_
        self.destination = destination
        self.template = template
        self.provider = get_provider(type_)
        kwargs.setdefault("initial", self._initial())
        super().__init__(*args, **kwargs)
        if self.provider.uses_url:
            self.fields["url"].help_text = self.provider.url_help
        else:
            del self.fields["url"]
        if self.provider.signs:
            self._add_signing_fields()
        else:
            del self.fields["method"]
            del self.fields["headers"]
        for spec in self.provider.fields:
            self.fields[CONFIG_PREFIX + spec.name] = self._config_field(spec)
        # {field: (the field deciding whether it is used, the values for which it is)}.
        self.shown_when: dict[str, tuple[str, tuple[str, ...]]] = {}
        if CONFIG_PREFIX + "auth_type" in self.fields:
            for auth_type, names in AUTH_TYPE_FIELDS.items():
                for name in names:
                    if CONFIG_PREFIX + name in self.fields:
                        self.shown_when[CONFIG_PREFIX + name] = (CONFIG_PREFIX + "auth_type", (auth_type,))
        if "signing_mode" in self.fields:
            for name, modes in SIGNING_MODE_FIELDS.items():
                self.shown_when[name] = ("signing_mode", modes)
        for name in self.placeholders():
            if name in self.fields:
                self.fields[name].widget.attrs["class"] = "fill-in"
                self.fields[name].help_text = _join(self.fields[name].help_text, "Fill in for this template")

    # --- building --------------------------------------------------------------------------

    @staticmethod
    def _config_field(spec) -> forms.Field:
        label = config_label(spec.name)
        help_text = _join(spec.help[:1].upper() + spec.help[1:], "Required" if spec.required else "")
        if spec.choices:
            choices = [(c, c) for c in spec.choices]
            if not spec.required:
                choices = [("", "—")] + choices
            return forms.ChoiceField(label=label, choices=choices, required=False, help_text=help_text)
        if spec.kind is bool:
            return forms.BooleanField(label=label, required=False, help_text=help_text)
        if spec.kind is int:
            return forms.IntegerField(label=label, required=False, help_text=help_text)
        if spec.kind is dict:
            return forms.CharField(
                label=label,
                required=False,
                widget=forms.Textarea(attrs={"rows": 3}),
                help_text=_join(help_text, "A JSON object"),
            )
        if spec.secret:
            return forms.CharField(
                label=label,
                required=False,
                strip=False,
                widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}),
                help_text=_join(help_text, "Secret: stored encrypted, shown masked"),
            )
        return forms.CharField(label=label, required=False, help_text=help_text)

    def _add_signing_fields(self) -> None:
        self.fields["signing_mode"] = forms.ChoiceField(
            label="Signature",
            choices=[
                (SIGNING_NONE, "Do not sign"),
                (MODE_HMAC, "HMAC of the body"),
                (MODE_STANDARD_WEBHOOKS, "Standard Webhooks"),
            ],
        )
        self.fields["signing_secret"] = forms.CharField(
            label="Signing secret",
            required=False,
            strip=False,
            widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}),
            help_text="Standard Webhooks secrets start with whsec_.",
        )
        self.fields["signing_algorithm"] = forms.ChoiceField(
            label="Algorithm", choices=[(a, a) for a in ALGORITHMS], required=False
        )
        self.fields["signing_header"] = forms.CharField(label="Signature header", required=False)
        self.fields["signing_prefix"] = forms.CharField(label="Signature prefix", required=False, strip=False)
        self.fields["signing_include_timestamp"] = forms.BooleanField(label="Sign “{timestamp}.{body}”", required=False)

    def _initial(self) -> dict:
        row = self.destination or Destination(type=self.type)
        initial = {
            "name": row.name,
            "slug": row.slug,
            "status": row.status,
            "url": row.url,
            "method": row.method,
            "headers": _header_lines(mask_headers(row.headers or {}, set())),
            "timeout_ms": row.timeout_ms,
            "retry_max_attempts": row.retry_max_attempts,
            "retry_backoff_type": row.retry_backoff_type,
            "retry_intervals": ", ".join(str(n) for n in row.retry_intervals or []),
            "retry_jitter": row.retry_jitter,
            "circuit_breaker_enabled": row.circuit_breaker_enabled,
            "circuit_breaker_threshold": row.circuit_breaker_threshold,
            "circuit_breaker_reset_ms": row.circuit_breaker_reset_ms,
            "max_concurrency": row.max_concurrency,
            "rate_limit_per_second": row.rate_limit_per_second,
            "signing_mode": SIGNING_NONE,
            "signing_algorithm": "sha256",
            "signing_header": DEFAULT_HEADER,
            "signing_prefix": "sha256=",
        }
        config = selectors.masked_provider_config(row) if self.destination else {}
        if self.template is not None:
            initial["name"] = self.template.name
            initial["url"] = self.template.config_template.get("url", "")
            config = dict(self.template.config_template.get("provider_config", {}))
        for spec in get_provider(self.type).fields:
            value = config.get(spec.name, spec.default)
            if spec.kind is dict and value is not None:
                value = json.dumps(value)
            initial[CONFIG_PREFIX + spec.name] = value
        signing = selectors.masked_signing_config(row) if self.destination else None
        if signing:
            initial["signing_mode"] = signing.get("mode", MODE_HMAC)
            initial["signing_secret"] = signing.get("secret", "")
            for key in ("algorithm", "header", "prefix", "include_timestamp"):
                if key in signing:
                    initial[f"signing_{key}"] = signing[key]
        return initial

    def placeholders(self) -> list[str]:
        """The form fields the template leaves for the user to fill in."""
        if self.template is None:
            return []
        return [CONFIG_PREFIX + path[1] if len(path) == 2 else path[0] for path in template_placeholders(self.template)]

    def groups(self) -> list[tuple[str, list]]:
        """(legend, bound fields) in page order; empty groups are left out."""
        result = []
        for legend, names in GROUPS:
            if legend == "Provider settings":
                names = [n for n in self.fields if n.startswith(CONFIG_PREFIX)]
            elif legend == "Signing":
                names = [n for n in self.fields if n.startswith("signing_")]
            bound = [self[name] for name in names if name in self.fields]
            for field in bound:
                field.show_when, field.show_values = self.shown_when.get(field.name, ("", ()))
            if bound:
                result.append((legend, bound))
        return result

    # --- cleaning ----------------------------------------------------------------------------

    def clean_headers(self) -> dict:
        headers: dict[str, str] = {}
        errors = []
        for number, line in enumerate(self.cleaned_data.get("headers", "").splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                errors.append(f"Line {number}: expected “Name: value”.")
                continue
            headers[name.strip()] = value.strip()
        if errors:
            raise forms.ValidationError(errors)
        if self.destination is not None:
            # A value shown masked and sent back unchanged keeps the stored value.
            stored = self.destination.headers or {}
            shown = mask_headers(stored, set())
            for name, value in headers.items():
                if name in stored and shown.get(name) == value and value != stored[name]:
                    headers[name] = stored[name]
        return headers

    def clean_retry_intervals(self) -> list:
        text = self.cleaned_data.get("retry_intervals", "")
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Whole numbers of seconds, separated by commas.") from None

    def used(self, name: str) -> bool:
        """Whether field ``name`` is used with the auth type and signing mode chosen."""
        if name not in self.shown_when:
            return True
        deciding, values = self.shown_when[name]
        return (self.cleaned_data.get(deciding) or "") in values

    def _config_values(self) -> tuple[dict, list[str]]:
        """The provider config the form stands for (``None`` removes a key on edit) and the
        names of the fields that are not valid JSON."""
        config: dict = {}
        bad_json = []
        for spec in self.provider.fields:
            name = CONFIG_PREFIX + spec.name
            value = self.cleaned_data.get(name)
            if not self.used(name):
                # Another auth type's value is not kept (the page hid it).
                if self.destination is not None:
                    config[spec.name] = None
                continue
            if spec.kind is dict and isinstance(value, str) and value.strip():
                try:
                    value = json.loads(value)
                except ValueError:
                    bad_json.append(name)
                    continue
            if spec.kind is bool:
                config[spec.name] = bool(value)
            elif value in (None, ""):
                if self.destination is not None:
                    config[spec.name] = None  # removes the key (PATCH semantics)
            else:
                config[spec.name] = value
        return config, bad_json

    def _clean_config(self) -> dict:
        config, bad_json = self._config_values()
        for name in bad_json:
            if "Not valid JSON." not in self.errors.get(name, []):
                self.add_error(name, "Not valid JSON.")
        return config

    def _signing(self):
        mode = self.cleaned_data.get("signing_mode") or SIGNING_NONE
        if mode == SIGNING_NONE:
            return None
        secret = self.cleaned_data.get("signing_secret") or ""
        if mode == MODE_STANDARD_WEBHOOKS:
            return {"mode": mode, "secret": secret}
        return {
            "mode": MODE_HMAC,
            "secret": secret,
            "algorithm": self.cleaned_data.get("signing_algorithm") or "sha256",
            "header": self.cleaned_data.get("signing_header") or DEFAULT_HEADER,
            "prefix": self.cleaned_data.get("signing_prefix") or "",
            "include_timestamp": bool(self.cleaned_data.get("signing_include_timestamp")),
        }

    def to_api(self) -> dict:
        """The API body this form stands for (after ``is_valid()``); a provider field that is
        not valid JSON adds its error to the form."""
        data = {name: self.cleaned_data[name] for name in (*services.PLAIN_FIELDS, "url") if name in self.cleaned_data}
        if self.cleaned_data.get("slug"):
            data["slug"] = self.cleaned_data["slug"]
        elif self.destination is not None:
            data["slug"] = self.destination.slug
        data["provider_config"] = self._clean_config()
        if self.provider.signs:
            data["signing_config"] = self._signing()
        if self.destination is None:
            data["type"] = self.type
            if self.template is not None:
                data["template"] = self.template.id
        return data

    POLICY_FIELDS = (
        "retry_max_attempts",
        "retry_backoff_type",
        "retry_intervals",
        "retry_jitter",
        "circuit_breaker_enabled",
        "circuit_breaker_reset_ms",
    )

    def policy(self) -> Destination | None:
        """An unsaved row with the retry and breaker settings of the form: the submitted ones
        when they are valid, else the stored ones (None for a new destination not submitted)."""
        cleaned = getattr(self, "cleaned_data", None)
        if cleaned is not None and all(name in cleaned for name in self.POLICY_FIELDS):
            return Destination(**{name: cleaned[name] for name in self.POLICY_FIELDS})
        return self.destination

    def secret_field_names(self) -> list[str]:
        names = [CONFIG_PREFIX + name for name in self.provider.secret_fields()]
        return names + (["signing_secret"] if "signing_secret" in self.fields else [])

    def forget_secrets(self) -> None:
        """Before a refused form is shown again: secrets typed in are not sent back to the
        browser; the fields show what they showed at first (the mask on edit, else empty)."""
        data = self.data.copy()
        dropped = []
        for name in self.secret_field_names():
            shown = self.initial.get(name) or ""
            if data.get(name, "") not in ("", shown):
                data[name] = shown
                dropped.append(name)
        self.data = data
        for name in dropped:
            if name not in self.errors:
                self.add_error(name, "Not kept after the errors on this form: enter the secret again.")

    # --- every error in one submit -----------------------------------------------------------

    def check_rules(self) -> None:
        """After a refused submit: add what the service and the provider would also refuse
        (``rule_errors``) beside the fields that show no error yet."""
        if not hasattr(self, "cleaned_data"):
            return
        self.add_api_errors(self.rule_errors(), only_new=True)

    def rule_errors(self) -> dict[str, list[str]]:
        """The service's checks run one by one on the valid part of the form, each whatever
        the others found: the template's blanks, the target URL, the provider config (its
        fields, then its rules across fields on the fields that passed) and the signing."""
        cleaned = self.cleaned_data
        errors: dict[str, list[str]] = {}

        def found(more: dict) -> None:
            for path, messages in more.items():
                errors.setdefault(path, []).extend(m for m in messages if m not in errors.get(path, []))

        if self.template is not None:
            for path, name in zip(template_placeholders(self.template), self.placeholders(), strict=True):
                if name in self.fields and self.data.get(name, "") in ("", None):
                    found({".".join(path): [f"Required by the {self.template.id} template."]})

        config, bad_json = self._config_values()
        if self.destination is not None:
            stored = selectors.masked_provider_config(self.destination)
            config = {k: v for k, v in {**stored, **config}.items() if v is not None}
        if self.destination is None or self.template is not None:
            # The template's defaults under the values given, as the service applies them.
            defaults = template_defaults(self.template).get("provider_config", {}) if self.template else {}
            config = {**defaults, **config}
        url = cleaned.get("url", self.destination.url if self.destination else "") or ""
        if "url" in self.fields and "url" in self.errors:
            url = None  # the form already refused it
        if url is not None:
            changed = self.destination is None or url != self.destination.url or "url" in config
            found(
                services.destination_target_errors(
                    type_=self.type, url=url, provider_config=config, check_address=changed
                )
            )

        # Fields the form refused are left out: their errors are already shown.
        config = {
            key: value
            for key, value in config.items()
            if CONFIG_PREFIX + key not in self.errors and CONFIG_PREFIX + key not in bad_json
        }
        try:
            self.provider.validate_config(config, url=url or "")
        except ConfigError as exc:
            found(exc.errors)
            # validate_config checks the rules across fields only when every field passed:
            # check them on the fields that did.
            passed = {spec.name: spec.default for spec in self.provider.fields if spec.default is not None}
            passed.update(
                {k: v for k, v in config.items() if f"provider_config.{k}" not in exc.errors and v not in (None, "")}
            )
            try:
                self.provider.clean(passed, url=url or "")
            except ConfigError as more:
                found(more.errors)
            except (TypeError, ValueError, KeyError):
                pass  # a rule needing a field that failed: its own error is shown

        if "signing_mode" in self.fields and "signing_mode" in cleaned:
            signing = self._signing()
            unchanged_secret = (
                signing is not None
                and self.destination is not None
                and signing.get("secret") == self.initial.get("signing_secret")
            )
            if unchanged_secret:
                signing.pop("secret")  # the stored secret, shown masked: checked when it was saved
            try:
                validate_signing_config(signing)
            except SigningConfigError as exc:
                found({k: v for k, v in exc.errors.items() if not (unchanged_secret and k == "signing_config.secret")})
        return errors

    # --- errors of the API ------------------------------------------------------------------

    def field_for_path(self, path: str) -> str | None:
        """The form field showing the API error of ``path`` (``provider_config.token`` → ``cfg_token``)."""
        parts = path.split(".")
        head = {"config": "provider_config", "timeout": "timeout_ms"}.get(parts[0], parts[0])
        if head == "provider_config" and len(parts) > 1:
            candidate = CONFIG_PREFIX + parts[1]
        elif head == "signing_config":
            candidate = f"signing_{parts[1]}" if len(parts) > 1 else "signing_mode"
        else:
            candidate = head
        return candidate if candidate in self.fields else None

    def place_error(self, path: str, message: str) -> tuple[str | None, str]:
        field = self.field_for_path(path)
        if field is None and path != "non_field_errors":
            message = f"{path}: {message}"
        return field, message
