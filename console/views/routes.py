"""Test a route against an event: the filter rules and the transform of a connection or a
subscription tried on a recent event (or a pasted body) before saving it.

``POST /route-test/`` (CSRF-checked like every console POST) evaluates them with
``intake.preview.route_preview``: the rules as at fan-out, the transform in the delivery
sandbox. The event is looked up inside the session's organization (404 for anyone else's).
``forms.js`` posts the route form here and puts the answer (an HTML fragment) under the Test
button; without JavaScript the Test button posts the route form here and the answer is a page
with the result and the tester, filled in. Nothing is saved.
"""

from __future__ import annotations

import json

from django.shortcuts import render
from django.views import View

from console.base import ConsoleMixin, LookupFirstMixin, safe_next
from console.forms.intake import RouteFieldsForm
from console.forms.routes import RECENT_EVENTS, RouteTestForm, event_choices, scope_id
from intake import preview, selectors

FRAGMENT_HEADER = "fetch"


def tester_form(organization, *, source_id: str = "", topic_id: str = "", data=None, initial=None) -> RouteTestForm:
    """The tester with the recent events of the source (or topic) offered."""
    events = selectors.recent_events(
        organization=organization, source_id=scope_id(source_id), topic_id=scope_id(topic_id), limit=RECENT_EVENTS
    )
    initial = {"source_id": source_id, "topic_id": topic_id, **(initial or {})}
    return RouteTestForm(data, events=events, initial=initial)


class RouteTestView(ConsoleMixin, LookupFirstMixin, View):
    """GET: the tester page (``?connection_id=`` or ``?topic_id=…&subscription_id=`` fill in a
    saved route). POST: the result, as a fragment for ``forms.js`` or as the page."""

    template_name = "console/routes/test.html"
    fragment_template = "console/routes/_result.html"

    def get(self, request):
        params = request.GET
        initial, title = {}, ""
        source_id, topic_id = scope_id(params.get("source_id", "")), scope_id(params.get("topic_id", ""))
        if scope_id(params.get("connection_id", "")):
            connection = selectors.connection_get(organization=self.organization, connection_id=params["connection_id"])
            route, source_id = connection, connection.source_id
            title = f"{connection.source.name} → {connection.destination.name}"
        elif topic_id and scope_id(params.get("subscription_id", "")):
            topic = selectors.topic_get(organization=self.organization, topic_id=topic_id)
            route = selectors.subscription_get(topic=topic, subscription_id=params["subscription_id"])
            title = f"{topic.name} → {route.destination.name}"
        else:
            route = None
        if route is not None:
            initial = RouteFieldsForm.route_initial(route)
        back = safe_next(request, "")
        form = tester_form(self.organization, source_id=source_id, topic_id=topic_id, initial=initial)
        return render(request, self.template_name, {"tester": form, "route_title": title, "back": back})

    def post(self, request):
        data = request.POST
        form = tester_form(
            self.organization, source_id=data.get("source_id", ""), topic_id=data.get("topic_id", ""), data=data
        )
        context = {"tester": form, "back": safe_next(request, ""), "tested": True}
        status = 400
        if form.is_valid():
            status = 200
            context.update(self.evaluate(form.cleaned_data))
        fragment = request.headers.get("X-Requested-With") == FRAGMENT_HEADER
        return render(request, self.fragment_template if fragment else self.template_name, context, status=status)

    def evaluate(self, cleaned) -> dict:
        """The event (or the pasted body) and what the route does with it."""
        if cleaned["test_payload"] is not None:
            event = None
            context = preview.pasted_context(cleaned["test_payload"]["value"])
        else:
            event = selectors.event_for_routes(organization=self.organization, event_id=cleaned["test_event_id"])
            context = preview.event_context(event)
        result = preview.route_preview(
            filter_rules=cleaned["filter_rules"],
            transform_expression=cleaned["transform_expression"],
            context=context,
        )
        output = json.dumps(result.output, indent=2, ensure_ascii=False) if result.output is not None else ""
        return {"event": event, "result": result, "output_text": output}


class RouteTestEventsView(ConsoleMixin, View):
    """GET ``?source_id=`` (or ``?topic_id=``): the ``<option>``s of the tester's event picker
    for that source, fetched by ``forms.js`` when the route form's source changes."""

    def get(self, request):
        events = selectors.recent_events(
            organization=self.organization,
            source_id=scope_id(request.GET.get("source_id", "")),
            topic_id=scope_id(request.GET.get("topic_id", "")),
            limit=RECENT_EVENTS,
        )
        return render(request, "console/routes/_event_options.html", {"choices": event_choices(events)})
