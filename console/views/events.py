"""Events: the list (filters, search, newer and older pages) and one event with its deliveries, an attempts
timeline and a Retry button."""

from __future__ import annotations

import json
from collections import defaultdict

from django.contrib import messages
from django.db.models.fields.json import KT
from django.urls import reverse
from django.views.generic import TemplateView

from console.base import ConsoleMixin, LookupFirstMixin
from console.forms.events import EventFilterForm
from console.paging import page_of
from console.views.generic import ActionView
from console.words import dead_letter_reason, last_error_words
from deliveries import selectors as delivery_selectors
from deliveries import services as delivery_services
from deliveries.models import DeliveryStatus
from deliveries.selectors import dead_letters_by_delivery, delivery_status_counts, events_delivered_to
from deliveries.serializers import EventDetailSerializer
from destinations.selectors import destination_choices, destination_names
from intake import selectors
from intake.models import Event

RESPONSE_EXCERPT_CHARS = 500


class EventListView(ConsoleMixin, TemplateView):
    template_name = "console/events/list.html"

    def get_context_data(self, **kwargs):
        org = self.organization
        form = EventFilterForm(
            self.request.GET or None,
            statuses=delivery_selectors.EventStatus.ALL,
            sources=selectors.source_choices(organization=org),
            destinations=destination_choices(organization=org),
        )
        events = (
            delivery_selectors.events_for_organization(organization=org)
            .select_related("source", "topic")
            .annotate(event_type=KT("payload__type"))
        )
        if form.is_bound and form.is_valid():
            wanted = form.cleaned_data
            if wanted["status"]:
                events = events.filter(delivery_selectors.STATUS_CONDITIONS[wanted["status"]])
            if wanted["source_id"]:
                events = events.filter(source_id=wanted["source_id"])
            if wanted["destination_id"]:
                events = events_delivered_to(events, destination_id=wanted["destination_id"])
            if wanted["after"]:
                events = events.filter(received_at__gte=wanted["after"])
            if wanted["before"]:
                events = events.filter(received_at__lt=wanted["before"])
            if wanted["search"]:
                events = selectors.events_search(events, wanted["search"])
        elif form.is_bound:
            events = events.none()
        # By arrival, as GET /v1/events: one index serves the order, both cursors and the range.
        page = page_of(self.request, events, field="received_at")
        summaries = delivery_status_counts(event_ids=[event.pk for event in page.rows])
        for event in page.rows:
            event.status_label = event.status.replace("_", " ")
            event.delivery_summary = summaries.get(event.pk, [])
        return super().get_context_data(form=form, page=page, **kwargs)


def _indented(value) -> str:
    """JSON for reading; compact when it nests too deeply to indent."""
    if value is None:
        return ""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except RecursionError:
        return json.dumps(value, ensure_ascii=False)


def _pretty_body(event) -> tuple[str, str]:
    """The body as shown: indented JSON when it parses, else text, else base64 (and which)."""
    api = EventDetailSerializer()
    body, encoding = api.get_body(event), api.get_body_encoding(event)
    if encoding == "utf-8" and body.strip():
        try:
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False), "json"
        except (ValueError, RecursionError):
            pass
    return body, encoding


class EventLookupMixin(LookupFirstMixin):
    def lookup(self) -> Event:
        return selectors.event_get(organization=self.organization, event_id=self.kwargs["pk"])


class EventDetailView(ConsoleMixin, EventLookupMixin, TemplateView):
    template_name = "console/events/detail.html"

    def get_context_data(self, **kwargs):
        event = delivery_selectors.event_detail(organization=self.organization, event_id=kwargs["pk"])
        # Deleted destinations too: their deliveries stay in the history.
        names = destination_names(
            organization=self.organization, destination_ids=[d.destination_id for d in event.delivery_list]
        )
        dead_letters = dead_letters_by_delivery(event=event)
        attempts = defaultdict(list)
        for attempt in event.attempt_list:
            attempt.timeline_class = "succeeded" if attempt.status == "success" else attempt.status
            attempt.response_excerpt = attempt.response_body[:RESPONSE_EXCERPT_CHARS]
            attempt.response_cut = len(attempt.response_body) > RESPONSE_EXCERPT_CHARS
            attempts[attempt.delivery_id].append(attempt)
        for delivery in event.delivery_list:
            delivery.destination_name = names.get(delivery.destination_id, delivery.destination_id)
            delivery.timeline = attempts.get(delivery.pk, [])
            delivery.transformed_text = _indented(delivery.transformed_payload)
            dead_letter = dead_letters.get(delivery.pk)
            if dead_letter is not None:
                delivery.dead_reason = dead_letter_reason(dead_letter.reason)
                delivery.dead_error = last_error_words(
                    dead_letter.last_error or delivery.last_error, attempt_count=len(delivery.timeline)
                )
        event.status_label = event.status.replace("_", " ")
        body, body_kind = _pretty_body(event)
        retryable = any(d.status in (DeliveryStatus.DEAD, DeliveryStatus.SCHEDULED) for d in event.delivery_list)
        return super().get_context_data(
            event=event,
            body=body,
            body_kind=body_kind,
            headers=sorted((event.headers or {}).items()),
            query=sorted((event.query or {}).items()),
            retryable=retryable,
            **kwargs,
        )


class EventRetryView(EventLookupMixin, ActionView):
    """POST: retry every dead or scheduled delivery of the event (``event_retry``)."""

    def success_url(self, event) -> str:
        return reverse("console:event-detail", args=[event.pk])

    def act(self, event) -> None:
        result = delivery_services.event_retry(event=event)
        if result["retried"]:
            n = len(result["retried"])
            messages.success(self.request, f"Retrying {n} deliver{'y' if n == 1 else 'ies'}.")
        for error in result["errors"]:
            messages.error(self.request, f"Delivery {error['delivery_id']} was not retried: {error['error']}.")
        if not result["retried"] and not result["errors"]:
            messages.info(self.request, "Nothing to retry: no delivery of this event is dead or waiting for a retry.")
