import json

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html

from deliveries.circuit import circuit_reset
from deliveries.services import destination_delete, destination_update, replay_job_create
from destinations import selectors
from destinations.models import CircuitState, Destination, DestinationStatus
from hookstream.api.exceptions import error_details
from hookstream.errors import ValidationError


def _pretty(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


@admin.action(description="Reset circuit (close it and release held deliveries)")
def reset_circuit(modeladmin, request, queryset):
    destinations = [getattr(row, "destination", row) for row in queryset]
    for destination in destinations:
        circuit_reset(destination=destination)
    modeladmin.message_user(request, f"Reset {len(destinations)} circuit(s).")


class ReplayRangeForm(forms.Form):
    """The time range (and pace) of an admin replay; the limits are the replay API's."""

    range_from = forms.DateTimeField(label="From", help_text="Events received at or after (YYYY-MM-DD HH:MM, UTC).")
    range_to = forms.DateTimeField(label="To", help_text="Events received at or before.")
    rate_limit = forms.IntegerField(label="Events per second", initial=10, min_value=1, max_value=100)
    max_events = forms.IntegerField(label="At most", initial=1000, min_value=1, max_value=10000)

    def clean(self):
        data = super().clean()
        if data.get("range_from") and data.get("range_to") and data["range_from"] > data["range_to"]:
            raise forms.ValidationError("“From” must be before “To”.")
        return data


class CircuitInline(admin.StackedInline):
    model = CircuitState
    can_delete = False
    extra = 0
    readonly_fields = [f.name for f in CircuitState._meta.fields if f.name != "destination"]


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    """Secrets (provider_config, signing_config, headers) are shown masked and read-only:
    change them through the API, which encrypts them."""

    list_display = ["name", "slug", "organization", "type", "status", "circuit_state", "created_at", "deleted_at"]
    list_filter = ["type", "status", "organization", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug", "id", "url", "organization__slug"]
    list_select_related = ["organization", "circuit"]
    exclude = ["provider_config", "signing_config", "headers"]
    readonly_fields = [
        "id",
        "organization",
        "type",
        "url",
        "masked_provider_config",
        "masked_signing_config",
        "masked_headers",
        "deleted_at",
        "created_at",
        "updated_at",
    ]
    inlines = [CircuitInline]
    # "delete_selected" replaces Django's bulk delete, which would delete the rows and cascade
    # to their deliveries, attempts and dead letters.
    actions = ["delete_selected", reset_circuit, "pause", "resume", "replay_range"]

    def get_queryset(self, request):
        return Destination.all_objects.select_related("organization", "circuit")

    def has_add_permission(self, request):
        return False

    @admin.display(description="Circuit")
    def circuit_state(self, obj):
        circuit = getattr(obj, "circuit", None)
        return circuit.state if circuit else "closed"

    @admin.display(description="Provider config (masked)")
    def masked_provider_config(self, obj):
        return _pretty(selectors.masked_provider_config(obj))

    @admin.display(description="Signing config (masked)")
    def masked_signing_config(self, obj):
        return _pretty(selectors.masked_signing_config(obj))

    @admin.display(description="Headers (values masked)")
    def masked_headers(self, obj):
        return _pretty({name: "****" for name in (obj.headers or {})})

    def _set_status(self, request, queryset, status):
        changed = 0
        for destination in queryset.filter(deleted_at__isnull=True):
            destination_update(destination=destination, data={"status": status})
            changed += 1
        self.message_user(request, f"{changed} destination(s) now {status}.")

    @admin.action(description="Pause selected destinations (hold their deliveries)")
    def pause(self, request, queryset):
        self._set_status(request, queryset, DestinationStatus.PAUSED)

    @admin.action(description="Resume selected destinations (release held deliveries)")
    def resume(self, request, queryset):
        self._set_status(request, queryset, DestinationStatus.ACTIVE)

    @admin.action(description="Delete selected destinations (their history stays)…")
    def delete_selected(self, request, queryset):
        """Ask first, then soft-delete each live destination as ``DELETE /v1/destinations/<id>``
        does (``destination_delete``): hidden, what it still owed cancelled, history kept."""
        destinations = list(queryset.filter(deleted_at__isnull=True))
        if request.POST.get("post") == "yes":
            for destination in destinations:
                destination_delete(destination=destination)
            self.message_user(request, f"Deleted {len(destinations)} destination(s); their history stays.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete destinations",
            "opts": self.model._meta,
            "destinations": destinations,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "delete_selected",
        }
        return TemplateResponse(request, "admin/destinations/delete_selected.html", context)

    def delete_model(self, request, obj):
        """The change page's Delete button: the same soft delete."""
        destination_delete(destination=obj)

    def get_deleted_objects(self, objs, request):
        # Nothing cascades: the confirmation lists the destinations alone.
        destinations = list(objs)
        return [str(d) for d in destinations], {"destinations": len(destinations)}, set(), []

    @admin.action(description="Replay events of a time range to selected destinations…")
    def replay_range(self, request, queryset):
        """Ask for a time range, then start one replay job per destination (paced, resumable)."""
        destinations = list(queryset.filter(deleted_at__isnull=True))
        form = ReplayRangeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            started = []
            for destination in destinations:
                try:
                    job = replay_job_create(
                        organization=destination.organization, destination=destination, **form.cleaned_data
                    )
                except ValidationError as exc:
                    problems = "; ".join(m for messages in error_details(exc).values() for m in messages)
                    self.message_user(request, f"{destination.name}: {problems}", level="error")
                    continue
                started.append(f"{destination.name} ({job.total} events, job {job.pk})")
            if started:
                self.message_user(request, "Started replay: " + "; ".join(started) + ".")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay events of a time range",
            "opts": self.model._meta,
            "form": form,
            "destinations": destinations,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "replay_range",
        }
        return TemplateResponse(request, "admin/destinations/replay_range.html", context)


@admin.register(CircuitState)
class CircuitStateAdmin(admin.ModelAdmin):
    list_display = ["destination", "state", "failure_count", "opened_at", "last_failure_at", "last_success_at"]
    list_filter = ["state"]
    search_fields = ["destination__name", "destination__slug", "destination__id"]
    list_select_related = ["destination"]
    readonly_fields = [f.name for f in CircuitState._meta.fields]
    actions = [reset_circuit]

    def has_add_permission(self, request):
        return False
