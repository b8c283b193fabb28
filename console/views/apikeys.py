"""API keys: list (prefix only), create (the key shown once, on the answer to the POST),
revoke."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.generic import TemplateView

from console.base import ConsoleMixin
from console.forms.apikeys import APIKeyForm
from console.paging import page_of
from console.views.generic import ConfirmView, ServiceFormView
from hookstream import selectors, services
from hookstream.api.serializers import APIKeyCreateSerializer
from hookstream.models import APIKey
from hookstream.public_url import public_base_url


class APIKeyListView(ConsoleMixin, TemplateView):
    template_name = "console/apikeys/list.html"

    def get_context_data(self, **kwargs):
        keys = selectors.api_keys_for_organization(organization=self.organization)
        return super().get_context_data(page=page_of(self.request, keys), **kwargs)


class APIKeyCreateView(ServiceFormView):
    """The raw key exists only in the answer to the POST: it is not stored, not put in the
    session or a URL, and the page is marked not to be cached."""

    template_name = "console/apikeys/form.html"
    form_class = APIKeyForm
    serializer_class = APIKeyCreateSerializer

    def service(self, data):
        return services.api_key_create(organization=self.organization, name=data["name"], created_by=self.request.user)

    def done(self, obj):
        key, raw = obj
        response = render(
            self.request,
            "console/apikeys/created.html",
            {"key": key, "raw_key": raw, "api_base": public_base_url(self.request)},
        )
        add_never_cache_headers(response)
        return response


class APIKeyRevokeView(ConfirmView):
    """GET asks, POST revokes (the key answers 401 from then on; it stays listed)."""

    def lookup(self) -> APIKey:
        return selectors.api_key_get(organization=self.organization, key_id=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        key = self.lookup()
        if key.revoked:
            messages.info(request, f"The key “{key.name}” is already revoked.")
            return redirect("console:apikey-list")
        return render(request, self.template_name, self.confirmation(key))

    def confirmation(self, key) -> dict:
        return {
            "title": "Revoke API key",
            "question": f"Revoke the key “{key.name}” ({key.key_prefix}…)?",
            "consequences": ["Every request made with it will answer 401 from now on. This cannot be undone."],
            "confirm_label": "Revoke key",
            "cancel_url": reverse("console:apikey-list"),
        }

    def success_url(self, key) -> str:
        return reverse("console:apikey-list")

    def act(self, key) -> None:
        key = services.api_key_revoke(key=key)
        messages.success(self.request, f"Revoked the key “{key.name}” ({key.key_prefix}…).")
