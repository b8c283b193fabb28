"""The two flows every console page is made of.

- ``ServiceFormView``: GET shows a form; POST validates it, sends the API body it stands for
  through the API's write serializer and one service, says what happened and redirects
  (post/redirect/get). A refusal shows the form again with each error beside its field.
- ``ActionView``: POST only; changes one row through a service, says what happened and goes
  back to a safe ``next`` (a URL of this site) or to the row's page. ``ConfirmView`` adds a
  GET that asks first; ``DeleteView`` is the confirmation of a delete.

Rows are looked up through selectors inside the session's organization (``lookup()``; 404 for
anyone else's id, whatever the method).
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from console.base import ConsoleMixin, LookupFirstMixin, safe_next
from console.forms.common import ServiceRefused, call_service, check_the_rest


class ServiceFormView(ConsoleMixin, LookupFirstMixin, View):
    """form → service → message → redirect.

    Subclasses name ``template_name`` and ``form_class`` and write ``service(data)``; edit
    pages return their row from ``lookup()`` (``self.object``, in the context under
    ``context_object_name``). The API body is ``form.to_api()``, checked by
    ``serializer_class`` first when there is one; a 409 goes beside ``conflict_field``.
    """

    template_name = ""
    form_class = None
    serializer_class = None
    conflict_field: str | None = None
    context_object_name = "object"
    success_message = ""  # formatted with the saved row as ``obj``
    invalid_status = 200

    def get_form_kwargs(self) -> dict:
        return {}

    def get_initial(self) -> dict | None:
        return None

    def get_form(self, data=None):
        kwargs = self.get_form_kwargs()
        initial = self.get_initial()
        if initial is not None:
            kwargs.setdefault("initial", initial)
        return self.form_class(data, **kwargs)

    def get_context_data(self, form) -> dict:
        return {"form": form, self.context_object_name: self.object}

    def render_form(self, form, status: int = 200):
        return render(self.request, self.template_name, self.get_context_data(form), status=status)

    def form_data(self, form) -> dict:
        """The API body sent to the service."""
        return form.to_api()

    def service(self, data):
        """Call the one service this page stands for; return what it saved."""
        raise NotImplementedError

    def save(self, form):
        return call_service(
            form,
            self.service,
            serializer_class=self.serializer_class,
            data=self.form_data(form),
            conflict_field=self.conflict_field,
        )

    def success_url(self, obj) -> str:
        raise NotImplementedError

    def done(self, obj):
        """The answer after a save: the message, then the next page."""
        messages.success(self.request, self.success_message.format(obj=obj))
        return redirect(self.success_url(obj))

    def refused(self, form) -> None:
        """Before a refused form is shown again."""

    def get(self, request, *args, **kwargs):
        self.object = self.lookup()
        return self.render_form(self.get_form())

    def post(self, request, *args, **kwargs):
        self.object = self.lookup()
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                obj = self.save(form)
            except ServiceRefused:
                # The service may have changed the row in memory before refusing.
                self.object = self.lookup()
            else:
                return self.done(obj)
        elif self.serializer_class is not None:
            check_the_rest(form, self.serializer_class)
        self.refused(form)
        return self.render_form(form, status=self.invalid_status)


class ActionView(ConsoleMixin, LookupFirstMixin, View):
    """A POST that acts on the row of ``lookup()`` and goes back to a safe ``next``, else to
    ``success_url``. ``act`` calls the service and says what happened (``messages``)."""

    http_method_names = ["post"]

    def act(self, obj) -> None:
        raise NotImplementedError

    def success_url(self, obj) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        obj = self.lookup()
        fallback = self.success_url(obj)  # before acting: the row may be gone after
        self.act(obj)
        return redirect(safe_next(request, fallback))


class ConfirmView(ActionView):
    """GET asks (``confirmation``, on ``template_name``), POST acts."""

    http_method_names = ["get", "post"]
    template_name = "console/pages/confirm.html"

    def confirmation(self, obj) -> dict:
        """The context of the question: title, question, consequences, confirm_label, cancel_url."""
        raise NotImplementedError

    def get(self, request, *args, **kwargs):
        return render(request, self.template_name, self.confirmation(self.lookup()))


class DeleteView(ConfirmView):
    """GET asks, POST deletes. After deleting, the page goes to ``list_url`` and Cancel back
    to ``detail_url`` (URL names, the detail taking the row's pk)."""

    what = ""
    list_url = ""
    detail_url = ""

    def consequences(self, obj) -> list[str]:
        return []

    def perform(self, obj) -> None:
        raise NotImplementedError

    def label(self, obj) -> str:
        return str(obj)

    def success_url(self, obj) -> str:
        return reverse(self.list_url)

    def cancel_url(self, obj) -> str:
        return reverse(self.detail_url, args=[obj.pk]) if self.detail_url else self.success_url(obj)

    def confirmation(self, obj) -> dict:
        return {
            "title": f"Delete {self.what}",
            "question": f"Delete {self.what} “{self.label(obj)}”? This cannot be undone.",
            "consequences": self.consequences(obj),
            "confirm_label": f"Delete {self.what}",
            "cancel_url": self.cancel_url(obj),
        }

    def deleted_message(self, obj, label: str) -> str:
        return f"Deleted {self.what} “{label}”."

    def act(self, obj) -> None:
        label = self.label(obj)
        self.perform(obj)
        messages.success(self.request, self.deleted_message(obj, label))
