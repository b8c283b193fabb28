"""The API key form."""

from django import forms

from console.forms.common import APIForm


class APIKeyForm(APIForm):
    name = forms.CharField(max_length=200, help_text="What uses the key, e.g. deploy bot.")
