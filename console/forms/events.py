"""The filters above the event list."""

from django import forms


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
