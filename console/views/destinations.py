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
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from console.base import ConsoleMixin, safe_next
from console.forms.destinations import (
    TYPE_DESCRIPTIONS,
    TYPE_LABELS,
    DestinationForm,
    FormRefused,
    config_label,
)
from console.owned import LookupFirstMixin
from deliveries import services as delivery_services
from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, DeliveryStatus
from deliveries.selectors import dead_letters_for_destination
from destinations import selectors, services
from destinations.models import CircuitStateValue, DestinationStatus, DestinationType
from destinations.providers import get_provider
from destinations.providers.http import mask_headers
from templates_catalog.catalog import all_templates, get_template, template_placeholders

PAGE_SIZE = 25
RECENT_ATTEMPTS = 20
DEAD_LETTERS_SHOWN = 50
# Seconds between refreshes of the live part of the detail page.
LIVE_REFRESH_SECONDS = 2


class DestinationListView(ConsoleMixin, TemplateView):
    template_name = "console/destinations/list.html"

    def get_context_data(self, **kwargs):
        last = DeliveryAttempt.objects.filter(destination=OuterRef("pk")).order_by("-created_at", "-id")
        rows = (
            selectors.destinations_for_organization(organization=self.organization)
            .select_related("circuit")
            .annotate(
                last_attempt_at=Subquery(last.values("created_at")[:1]),
                last_attempt_status=Subquery(last.values("status")[:1]),
                last_attempt_code=Subquery(last.values("response_status")[:1]),
            )
            .order_by("-created_at", "-id")
        )
        page = Paginator(rows, PAGE_SIZE).get_page(self.request.GET.get("page"))
        return super().get_context_data(page=page, **kwargs)


def human_seconds(seconds: float) -> str:
    """``90`` → "1.5 min", ``7200`` → "2 h": retry intervals and cooldowns as people say them."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}" if (seconds * 10) % size == 0 else f"{seconds / size:.1f} {unit}"
    return f"{seconds:g} s"


def _destination(view) -> object:
    return selectors.destination_get(organization=view.organization, destination_id=view.kwargs["pk"])


class DestinationLookup(LookupFirstMixin):
    """Another organization's destination id is a 404 whatever the method (405 only for ours)."""

    def lookup(self):
        return _destination(self)


def live_context(destination) -> dict:
    """What the auto-refreshing part of the detail page shows: circuit, attempts, dead letters."""
    dead_letters = dead_letters_for_destination(destination=destination).order_by("-created_at", "-id")
    waiting = dict.fromkeys((DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD), 0)
    for status in (
        Delivery.objects.filter(destination=destination, status__in=list(waiting))
        .values_list("status", flat=True)
        .iterator()
    ):
        waiting[status] += 1
    circuit = selectors.destination_circuit(destination=destination)
    probe_at = None
    if circuit.state == CircuitStateValue.OPEN and circuit.opened_at:
        probe_at = circuit.opened_at + timedelta(milliseconds=destination.circuit_breaker_reset_ms)
    return {
        "destination": destination,
        "circuit": circuit,
        "probe_at": probe_at,
        "attempts": DeliveryAttempt.objects.filter(destination=destination).order_by("-created_at", "-id")[
            :RECENT_ATTEMPTS
        ],
        "dead_letters": dead_letters[:DEAD_LETTERS_SHOWN],
        "dead_letter_count": dead_letters.count(),
        "waiting": waiting,
    }


class DestinationDetailView(DestinationLookup, ConsoleMixin, TemplateView):
    template_name = "console/destinations/detail.html"

    def get_context_data(self, **kwargs):
        destination = _destination(self)
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
            **kwargs,
        )


class DestinationLiveView(DestinationLookup, ConsoleMixin, TemplateView):
    """The live part of the detail page alone, fetched by console.js to refresh it."""

    template_name = "console/destinations/_live.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(**live_context(_destination(self)), **kwargs)


# --- create and edit -------------------------------------------------------------------------


def _type_choices() -> list[dict]:
    return [
        {"value": value, "label": TYPE_LABELS[value], "description": TYPE_DESCRIPTIONS[value]}
        for value in DestinationType.values
    ]


class DestinationFormView(ConsoleMixin, View):
    """Shared by create, create-from-template and edit: render the form, save through the service."""

    template_name = "console/destinations/form.html"

    def form_kwargs(self) -> dict:
        raise NotImplementedError

    def render_form(self, form, status=200):
        context = {"form": form, "destination": form.destination, "template": form.template, "type": form.type}
        return render(self.request, self.template_name, context, status=status)

    def get(self, request, *args, **kwargs):
        return self.render_form(DestinationForm(**self.form_kwargs()))

    def post(self, request, *args, **kwargs):
        form = DestinationForm(request.POST, **self.form_kwargs())
        if form.is_valid():
            try:
                destination = form.save(organization=self.organization)
            except FormRefused:
                pass
            else:
                verb = "saved" if form.destination else "created"
                messages.success(request, f"Destination “{destination.name}” {verb}.")
                return redirect("console:destination-detail", pk=destination.pk)
        form.forget_secrets()
        return self.render_form(form, status=400)


class DestinationCreateView(DestinationFormView):
    """``?type=http``: the form of that type; without a type, the list of types to choose from."""

    def dispatch(self, request, *args, **kwargs):
        self.type = request.GET.get("type", "")
        return super().dispatch(request, *args, **kwargs)

    def form_kwargs(self) -> dict:
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
    def form_kwargs(self) -> dict:
        template = get_template(self.kwargs["template_id"])
        if template is None:
            raise Http404("No such template.")
        return {"type_": template.type, "template": template}


class DestinationEditView(DestinationLookup, DestinationFormView):
    def form_kwargs(self) -> dict:
        destination = _destination(self)
        return {"type_": destination.type, "destination": destination}


class DestinationDeleteView(DestinationLookup, ConsoleMixin, TemplateView):
    """GET asks for confirmation; POST deletes (its history stays, what it still owed is cancelled)."""

    template_name = "console/destinations/delete.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(destination=_destination(self), **kwargs)

    def post(self, request, *args, **kwargs):
        destination = _destination(self)
        services.destination_delete(destination=destination)
        messages.success(request, f"Destination “{destination.name}” deleted.")
        return redirect("console:destination-list")


# --- actions (POST only) -----------------------------------------------------------------------


class DestinationActionView(DestinationLookup, ConsoleMixin, View):
    """A POST that acts on one destination and returns to its page (or a safe ``next``)."""

    http_method_names = ["post"]

    def act(self, destination) -> None:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        destination = _destination(self)
        self.act(destination)
        fallback = reverse("console:destination-detail", kwargs={"pk": destination.pk})
        return redirect(safe_next(request, fallback))


class CircuitResetView(DestinationActionView):
    def act(self, destination) -> None:
        services.circuit_reset(destination=destination)
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
            services.destination_update(destination=destination, data={"status": status})
        except DjangoValidationError as exc:
            messages.error(self.request, "; ".join(exc.messages))
            return
        word = {"active": "resumed", "paused": "paused", "disabled": "disabled"}[status]
        messages.success(self.request, f"Destination {word}.")


class DeadLetterRetryAllView(DestinationActionView):
    def act(self, destination) -> None:
        job = delivery_services.dead_letter_retry_job_create(organization=self.organization, destination=destination)
        if job.total:
            messages.success(self.request, f"Retrying {job.total} dead letter(s) (job {job.pk}).")
        else:
            messages.info(self.request, "No dead letters to retry.")


class DeadLetterRetryView(DestinationActionView):
    def act(self, destination) -> None:
        dead_letter = (
            DeadLetter.objects.select_related("delivery", "delivery__destination")
            .filter(organization=self.organization, destination=destination, pk=self.kwargs["dead_letter_id"])
            .first()
        )
        if dead_letter is None:
            raise Http404("No such dead letter.")
        try:
            delivery_services.delivery_retry(delivery=dead_letter.delivery)
        except delivery_services.RetryRefused as exc:
            messages.error(self.request, f"Not retried: {exc}.")
            return
        messages.success(self.request, f"Delivery of event {dead_letter.event_id} retried.")
