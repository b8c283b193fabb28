"""API keys: list (prefix only), create (the key shown once, on the answer to the POST),
revoke."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views import View
from django.views.generic import TemplateView

from console.base import ConsoleMixin
from console.forms_pages import APIKeyForm, ServiceRefused, call_service
from console.owned import owned
from console.paging import page_of
from hookstream import services
from hookstream.api.serializers import APIKeyCreateSerializer
from hookstream.models import APIKey
from hookstream.public_url import public_base_url


class APIKeyListView(ConsoleMixin, TemplateView):
    template_name = "console/apikeys/list.html"

    def get_context_data(self, **kwargs):
        keys = APIKey.objects.filter(organization=self.organization).defer("key_hash")
        return super().get_context_data(page=page_of(self.request, keys), **kwargs)


class APIKeyCreateView(ConsoleMixin, View):
    """The raw key exists only in the answer to the POST: it is not stored, not put in the
    session or a URL, and the page is marked not to be cached."""

    template_name = "console/apikeys/form.html"

    def get(self, request):
        return render(request, self.template_name, {"form": APIKeyForm()})

    def post(self, request):
        form = APIKeyForm(request.POST)
        if form.is_valid():
            try:
                key, raw = call_service(
                    form,
                    lambda data: services.api_key_create(
                        organization=self.organization, name=data["name"], created_by=request.user
                    ),
                    serializer_class=APIKeyCreateSerializer,
                    data=dict(form.cleaned_data),
                )
            except ServiceRefused:
                pass
            else:
                response = render(
                    request,
                    "console/apikeys/created.html",
                    {"key": key, "raw_key": raw, "api_base": public_base_url(request)},
                )
                add_never_cache_headers(response)
                return response
        return render(request, self.template_name, {"form": form})


class APIKeyRevokeView(ConsoleMixin, View):
    """GET asks, POST revokes (the key answers 401 from then on; it stays listed)."""

    template_name = "console/pages/confirm.html"

    def get_key(self) -> APIKey:
        return owned(APIKey.objects.all(), self.organization, self.kwargs["pk"])

    def get(self, request, pk):
        key = self.get_key()
        if key.revoked:
            messages.info(request, f"The key “{key.name}” is already revoked.")
            return redirect("console:apikey-list")
        context = {
            "title": "Revoke API key",
            "question": f"Revoke the key “{key.name}” ({key.key_prefix}…)?",
            "consequences": ["Every request made with it will answer 401 from now on. This cannot be undone."],
            "confirm_label": "Revoke key",
            "cancel_url": reverse("console:apikey-list"),
        }
        return render(request, self.template_name, context)

    def post(self, request, pk):
        key = services.api_key_revoke(key=self.get_key())
        messages.success(request, f"Revoked the key “{key.name}” ({key.key_prefix}…).")
        return redirect("console:apikey-list")
