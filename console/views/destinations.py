"""Destination pages: list, detail (circuit, attempts, dead letters), create/edit, actions.

Every row is looked up inside the session's organization (``destination_get`` answers 404
for anyone else's id); every write goes through ``destinations.services`` or
``deliveries.services``, as the REST API's do. Actions are POST-only and redirect back
(post/redirect/get), with a message saying what happened.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from console.base import ConsoleMixin, LookupFirstMixin
from console.forms.destinations import TYPE_DESCRIPTIONS, TYPE_LABELS, DestinationForm, config_label
from console.paging import page_of
from console.views.generic import ActionView, ConfirmView, ServiceFormView
from console.words import cooldown_warning, dead_letter_reason, human_seconds, last_error_words
from deliveries import circuit as delivery_circuit
from deliveries import selectors as delivery_selectors
from deliveries import services as delivery_services
from destinations import selectors, services
from destinations.models import CircuitStateValue, DestinationStatus, DestinationType
from destinations.providers import get_provider
from destinations.providers.http import mask_headers
from destinations.serializers import DestinationWriteSerializer
from monitoring import selectors as monitoring_selectors
from templates_catalog.catalog import all_templates, get_template, template_placeholders

RECENT_ATTEMPTS = 20
# The list's success rate, p95 and dead letters cover this many hours (whole hours, UTC).
FIGURES_HOURS = 24
DEAD_LETTERS_SHOWN = 50
# Seconds between refreshes of the live part of the detail page.
LIVE_REFRESH_SECONDS = 2


class DestinationListView(ConsoleMixin, TemplateView):
    """The destinations, each with its success rate, p95 latency and dead letters over the last
    ``FIGURES_HOURS`` hours (read for the page's rows from the monitoring rollups)."""

    template_name = "console/destinations/list.html"

    def get_context_data(self, **kwargs):
        destinations = delivery_selectors.destinations_with_delivery_counts(organization=self.organization)
        destinations = destinations.select_related("circuit")
        rows = delivery_selectors.with_last_attempt(destinations)
        page = page_of(self.request, rows)
        now = timezone.now()
        figures = monitoring_selectors.destination_figures(
            organization=self.organization,
            destination_ids=[row.pk for row in page.rows],
            after=now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=FIGURES_HOURS - 1),
            before=now,
        )
        for row in page.rows:
            row.figures = figures.get(row.pk)
        return super().get_context_data(page=page, figures_hours=FIGURES_HOURS, **kwargs)


class DestinationLookup(LookupFirstMixin):
    """Another organization's destination id is a 404 whatever the method (405 only for ours)."""

    def lookup(self):
        return delivery_selectors.destination_with_delivery_count(
            organization=self.organization, destination_id=self.kwargs["pk"]
        )


def live_context(destination) -> dict:
    """What the auto-refreshing part of the detail page shows: circuit, attempts, dead letters."""
    dead_letters = delivery_selectors.dead_letters_for_destination(destination=destination).order_by(
        "-created_at", "-id"
    )
    circuit = selectors.destination_circuit(destination=destination)
    shown = list(dead_letters[:DEAD_LETTERS_SHOWN])
    for dead_letter in shown:
        dead_letter.reason_text = dead_letter_reason(dead_letter.reason)
        dead_letter.error_text = last_error_words(
            dead_letter.last_error or dead_letter.delivery.last_error, attempt_count=dead_letter.delivery.attempt_count
        )
    probe_at = None
    if circuit.state == CircuitStateValue.OPEN and circuit.opened_at:
        probe_at = circuit.opened_at + timedelta(milliseconds=destination.circuit_breaker_reset_ms)
    return {
        "destination": destination,
        "circuit": circuit,
        "probe_at": probe_at,
        "attempts": delivery_selectors.attempts_for_destination(destination=destination)[:RECENT_ATTEMPTS],
        "dead_letters": shown,
        "dead_letter_count": dead_letters.count(),
        "waiting": delivery_selectors.waiting_delivery_counts(destination=destination),
    }


class DestinationDetailView(ConsoleMixin, DestinationLookup, TemplateView):
    template_name = "console/destinations/detail.html"

    def get_context_data(self, **kwargs):
        destination = self.lookup()
        provider = get_provider(destination.type)
        config = selectors.masked_provider_config(destination)
        secret_names = set(provider.secret_fields())
        return super().get_context_data(
            **live_context(destination),
            config_rows=[(config_label(name), config[name], name in secret_names) for name in sorted(config)],
            signing=selectors.masked_signing_config(destination),
            headers=mask_headers(destination.headers or {}, set()),
            template=get_template(destination.template) if destination.template else None,
            refresh_seconds=LIVE_REFRESH_SECONDS,
            intervals=", ".join(human_seconds(n) for n in destination.retry_intervals or []),
            cooldown=human_seconds(destination.circuit_breaker_reset_ms / 1000),
            cooldown_warning=cooldown_warning(destination),
            **kwargs,
        )


class DestinationLiveView(ConsoleMixin, DestinationLookup, TemplateView):
    """The live part of the detail page alone, fetched by console.js to refresh it."""

    template_name = "console/destinations/_live.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(**live_context(self.lookup()), **kwargs)


# --- create and edit -------------------------------------------------------------------------


def _type_choices() -> list[dict]:
    return [
        {"value": value, "label": TYPE_LABELS[value], "description": TYPE_DESCRIPTIONS[value]}
        for value in DestinationType.values
    ]


class DestinationFormView(ServiceFormView):
    """Shared by create, create-from-template and edit: one form per type, saved through
    ``destination_create`` or ``destination_update``."""

    template_name = "console/destinations/form.html"
    form_class = DestinationForm
    serializer_class = DestinationWriteSerializer
    conflict_field = "slug"
    invalid_status = 400

    def get_context_data(self, form) -> dict:
        policy = form.policy()
        return {
            "form": form,
            "destination": form.destination,
            "template": form.template,
            "type": form.type,
            "cooldown_warning": cooldown_warning(policy) if policy is not None else None,
        }

    def service(self, data):
        if self.object is None:
            return services.destination_create(organization=self.organization, data=data)
        return delivery_services.destination_update(destination=self.object, data=data)

    def success_url(self, destination) -> str:
        return reverse("console:destination-detail", args=[destination.pk])

    def done(self, destination):
        verb = "saved" if self.object else "created"
        messages.success(self.request, f"Destination “{destination.name}” {verb}.")
        warning = cooldown_warning(destination)
        if warning:
            messages.warning(self.request, warning)
        return redirect(self.success_url(destination))

    def refused(self, form) -> None:
        form.check_rules()  # what the service did not get to check
        form.forget_secrets()


class DestinationCreateView(DestinationFormView):
    """``?type=http``: the form of that type; without a type, the list of types to choose from."""

    def dispatch(self, request, *args, **kwargs):
        self.type = request.GET.get("type", "")
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict:
        return {"type_": self.type}

    def get(self, request, *args, **kwargs):
        if self.type not in DestinationType.values:
            if self.type:
                messages.error(request, "Choose one of the destination types below.")
            return render(request, "console/destinations/choose_type.html", {"types": _type_choices()})
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if self.type not in DestinationType.values:
            messages.error(request, "Choose one of the destination types below.")
            return redirect("console:destination-create")
        return super().post(request, *args, **kwargs)


class DestinationTemplateListView(ConsoleMixin, TemplateView):
    template_name = "console/destinations/templates.html"

    def get_context_data(self, **kwargs):
        templates = [
            {"template": t, "placeholders": [config_label(p[-1]) for p in template_placeholders(t)]}
            for t in all_templates()
        ]
        return super().get_context_data(templates=templates, **kwargs)


class DestinationCreateFromTemplateView(DestinationFormView):
    def get_form_kwargs(self) -> dict:
        template = get_template(self.kwargs["template_id"])
        if template is None:
            raise Http404("No such template.")
        return {"type_": template.type, "template": template}


class DestinationEditView(DestinationLookup, DestinationFormView):
    def get_form_kwargs(self) -> dict:
        return {"type_": self.object.type, "destination": self.object}


class DestinationDeleteView(DestinationLookup, ConfirmView):
    """GET asks for confirmation; POST deletes (its history stays, what it still owed is cancelled)."""

    template_name = "console/destinations/delete.html"

    def confirmation(self, destination) -> dict:
        return {"destination": destination}

    def success_url(self, destination) -> str:
        return reverse("console:destination-list")

    def act(self, destination) -> None:
        delivery_services.destination_delete(destination=destination)
        messages.success(self.request, f"Destination “{destination.name}” deleted.")


# --- actions (POST only) -----------------------------------------------------------------------


class DestinationActionView(DestinationLookup, ActionView):
    """A POST that acts on one destination and returns to its page (or a safe ``next``)."""

    def success_url(self, destination) -> str:
        return reverse("console:destination-detail", args=[destination.pk])


class CircuitResetView(DestinationActionView):
    def act(self, destination) -> None:
        delivery_circuit.circuit_reset(destination=destination)
        messages.success(self.request, "Circuit closed; held deliveries resume, oldest first.")


class TestSendView(DestinationActionView):
    def act(self, destination) -> None:
        delivery = delivery_services.destination_test_send(destination=destination)
        messages.success(self.request, f"Test event {delivery.event_id} queued.")


class StatusChangeView(DestinationActionView):
    """Pause, resume or disable (``status`` in the POST); resuming releases held deliveries."""

    def act(self, destination) -> None:
        status = self.request.POST.get("status", "")
        if status not in DestinationStatus.values:
            messages.error(self.request, "Unknown status.")
            return
        try:
            delivery_services.destination_update(destination=destination, data={"status": status})
        except DjangoValidationError as exc:
            messages.error(self.request, "; ".join(exc.messages))
            return
        word = {"active": "resumed", "paused": "paused", "disabled": "disabled"}[status]
        messages.success(self.request, f"Destination {word}.")


class DeadLetterRetryAllConfirmView(ConsoleMixin, DestinationLookup, TemplateView):
    """ "Retry all" asks first, with the count; when the circuit is not closed it says what
    would happen (the retried deliveries held again) and offers to reset it first."""

    template_name = "console/pages/confirm.html"

    def get(self, request, *args, **kwargs):
        destination = self.lookup()
        count = delivery_selectors.dead_letters_for_destination(destination=destination).count()
        if not count:
            messages.info(request, "No dead letters to retry.")
            return redirect("console:destination-detail", pk=destination.pk)
        circuit = selectors.destination_circuit(destination=destination)
        letters = f"{count} dead letter{'s' if count != 1 else ''}"
        consequences = ["Each goes back to the delivery engine with a fresh retry cycle; its past attempts stay."]
        alternatives = []
        if circuit.state != CircuitStateValue.CLOSED:
            consequences.append(
                f"The circuit is {circuit.state.replace('_', '-')}: retried deliveries would be held until it "
                "closes, and dead-lettered again if it stays open longer than the retry window. "
                "Reset the circuit to send them now."
            )
            alternatives.append({"name": "reset_circuit", "value": "1", "label": "Reset circuit and retry"})
        context = {
            "title": "Retry dead letters",
            "question": f"Retry the {letters} of “{destination.name}”?",
            "consequences": consequences,
            "alternatives": alternatives,
            "confirm_label": f"Retry {letters}",
            "confirm_class": "plain" if alternatives else "primary",
            "action_url": reverse("console:destination-dead-letters-retry", args=[destination.pk]),
            "cancel_url": reverse("console:destination-detail", args=[destination.pk]),
        }
        return render(request, self.template_name, context)


class DeadLetterRetryAllView(DestinationActionView):
    """POST: retry every dead letter in a job; with ``reset_circuit`` close the circuit first."""

    def act(self, destination) -> None:
        if self.request.POST.get("reset_circuit"):
            delivery_circuit.circuit_reset(destination=destination)
            messages.success(self.request, "Circuit closed.")
        job = delivery_services.dead_letter_retry_job_create(organization=self.organization, destination=destination)
        if job.total:
            messages.success(self.request, f"Retrying {job.total} dead letter(s) (job {job.pk}).")
        else:
            messages.info(self.request, "No dead letters to retry.")


class DeadLetterRetryView(DestinationActionView):
    def act(self, destination) -> None:
        dead_letter = delivery_selectors.dead_letter_for_destination(
            destination=destination, dead_letter_id=self.kwargs["dead_letter_id"]
        )
        try:
            delivery_services.delivery_retry(delivery=dead_letter.delivery)
        except delivery_services.RetryRefused as exc:
            messages.error(self.request, f"Not retried: {exc}.")
            return
        messages.success(self.request, f"Delivery of event {dead_letter.event_id} retried.")
