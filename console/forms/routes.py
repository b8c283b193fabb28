"""The "Test against an event" form of the connection and subscription forms (and its own page).

It carries the route's filter rules and transform under the names the route forms use
(``filter_rules``, ``transform_expression``), so the Test button of a route form can post that
form as it stands; the event is one of the recent events offered (``test_event_id``) or a
pasted JSON body (``test_payload``), which wins when both are given.
"""

from __future__ import annotations

import json

from django import forms

from console.forms.common import json_field
from intake.views import ID_PARAM_RE

# How many recent events the picker offers.
RECENT_EVENTS = 20


def event_label(event) -> str:
    """``evt_… · order.created · 2025-01-31 12:00:05 · source Shop``: what the picker shows."""
    parts = [event.pk]
    if isinstance(event.payload, dict) and isinstance(event.payload.get("type"), str):
        parts.append(event.payload["type"][:80])
    parts.append(event.received_at.strftime("%Y-%m-%d %H:%M:%S"))
    if event.source_id and event.source:
        parts.append(f"source {event.source.name}")
    elif event.topic_id and event.topic:
        parts.append(f"topic {event.topic.name}")
    return " · ".join(parts)


def event_choices(events) -> list[tuple[str, str]]:
    return [("", "Choose a recent event" if events else "No events yet: paste a JSON body")] + [
        (event.pk, event_label(event)) for event in events
    ]


class RouteTestForm(forms.Form):
    filter_rules = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}))
    transform_expression = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})
    )
    # A select whose options may be replaced by the page (another source chosen): any id is
    # accepted here and looked up inside the organization by the view.
    test_event_id = forms.CharField(required=False, label="Event", widget=forms.Select())
    test_payload = forms.CharField(
        required=False,
        label="Or paste a JSON body",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "placeholder": '{"type": "order.created"}'}),
        help_text="Tried as a POST of application/json without headers; wins over the event chosen.",
    )
    source_id = forms.CharField(required=False, widget=forms.HiddenInput())
    topic_id = forms.CharField(required=False, widget=forms.HiddenInput())

    def __init__(self, *args, events=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["test_event_id"].widget.choices = event_choices(list(events))

    def clean_filter_rules(self):
        return json_field(self.cleaned_data["filter_rules"], empty=[])

    def clean_test_event_id(self):
        value = self.cleaned_data["test_event_id"].strip()
        if value and not ID_PARAM_RE.match(value):
            raise forms.ValidationError("Not an event id.")
        return value

    def clean_test_payload(self):
        text = self.cleaned_data["test_payload"]
        if not text.strip():
            return None
        try:
            return {"value": json.loads(text)}
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        except RecursionError:
            raise forms.ValidationError("Not valid JSON: nested too deeply.") from None

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("test_payload") and not cleaned.get("test_event_id"):
            self.add_error("test_event_id", "Choose an event or paste a JSON body.")
        return cleaned


def scope_id(value: str) -> str:
    """A source or topic id from the request, or "" when it is not one."""
    return value if value and ID_PARAM_RE.match(value) else ""
