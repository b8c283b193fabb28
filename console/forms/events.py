"""The filters above the event list."""

from django import forms

# What a datetime-local input sends (seconds when the step allows them), and ISO 8601 with
# a zone for a typed or pasted time; a time without a zone is in the site's time zone.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class TimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(format="%Y-%m-%dT%H:%M:%S", attrs={"step": "1"})


class EventFilterForm(forms.Form):
    """The GET form above the event list (the names of ``GET /v1/events``' filters); unknown
    choices are simply not offered."""

    search = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "evt_…, idempotency key or text in the body", "type": "search"}),
    )
    status = forms.ChoiceField(required=False)
    source_id = forms.ChoiceField(required=False, label="Source")
    destination_id = forms.ChoiceField(required=False, label="Destination")
    after = forms.DateTimeField(
        required=False, label="Received from (UTC)", input_formats=DATETIME_FORMATS, widget=TimeInput()
    )
    before = forms.DateTimeField(
        required=False, label="Received before (UTC)", input_formats=DATETIME_FORMATS, widget=TimeInput()
    )

    def __init__(self, *args, statuses, sources, destinations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *((s, s.replace("_", " ")) for s in statuses)]
        self.fields["source_id"].choices = [("", "Any source"), *sources]
        self.fields["destination_id"].choices = [("", "Any destination"), *destinations]

    def clean_search(self):
        value = self.cleaned_data["search"].strip()
        if "\x00" in value:
            raise forms.ValidationError("Cannot contain a NUL character.")
        return value

    def clean(self):
        cleaned = super().clean()
        after, before = cleaned.get("after"), cleaned.get("before")
        if after and before and after >= before:
            self.add_error("before", "Must be later than “Received from”.")
        return cleaned
