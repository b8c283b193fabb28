"""Sources, connections and topics (with subscriptions) in the console.

Every write goes through ``intake.services`` with the dict the REST API would pass, after the
API's write serializer; refusals are shown beside the form's fields.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views import View
from django.views.generic import TemplateView

from console.base import ConsoleMixin
from console.forms_pages import (
    ConnectionForm,
    ServiceRefused,
    SourceForm,
    SubscriptionForm,
    TopicForm,
    call_service,
)
from console.owned import LookupFirstMixin, owned
from console.paging import page_of
from console.views_events import destination_choices, source_choices
from hookstream import crypto
from intake import services
from intake.models import Connection, Source, Subscription, Topic
from intake.serializers import (
    ConnectionWriteSerializer,
    SourceSerializer,
    SourceWriteSerializer,
    SubscriptionWriteSerializer,
    TopicSerializer,
    TopicWriteSerializer,
)
from intake.views import ID_PARAM_RE


class ConfirmDeleteView(ConsoleMixin, View):
    """GET asks, POST deletes. Subclasses find the row (404 outside the organization): by
    default with ``lookup()`` (``LookupFirstMixin``); after deleting, the page goes to
    ``list_url`` and Cancel back to ``detail_url`` (URL names)."""

    what = ""
    list_url = ""
    detail_url = ""

    def get_object(self):
        return self.lookup()

    def consequences(self, obj) -> list[str]:
        return []

    def perform(self, obj) -> None:
        raise NotImplementedError

    def success_url(self, obj) -> str:
        return reverse(self.list_url)

    def cancel_url(self, obj) -> str:
        return reverse(self.detail_url, args=[obj.pk]) if self.detail_url else self.success_url(obj)

    def label(self, obj) -> str:
        return str(obj)

    def get(self, request, **kwargs):
        obj = self.get_object()
        return render(
            request,
            "console/pages/confirm.html",
            {
                "title": f"Delete {self.what}",
                "question": f"Delete {self.what} “{self.label(obj)}”? This cannot be undone.",
                "consequences": self.consequences(obj),
                "confirm_label": f"Delete {self.what}",
                "cancel_url": self.cancel_url(obj),
            },
        )

    def post(self, request, **kwargs):
        obj = self.get_object()
        label = self.label(obj)
        target = self.success_url(obj)
        self.perform(obj)
        messages.success(request, f"Deleted {self.what} “{label}”.")
        return redirect(target)


# --- sources -------------------------------------------------------------------------------


def ingest_url(source: Source, request) -> str:
    return SourceSerializer(context={"request": request}).get_ingest_url(source)


def secret_mask(source: Source) -> str:
    """The stored verification secret as the API answers it (``****`` + last 4), or ""."""
    try:
        return SourceSerializer().get_verification_secret(source) or ""
    except ValueError:  # encrypted with another key: still never shown
        return crypto.MASK


class SourceMixin(ConsoleMixin, LookupFirstMixin):
    def get_source(self) -> Source:
        return owned(Source.objects.all(), self.organization, self.kwargs["pk"])

    def lookup(self):
        return self.get_source()


class SourceListView(ConsoleMixin, TemplateView):
    template_name = "console/sources/list.html"

    def get_context_data(self, **kwargs):
        sources = Source.objects.filter(organization=self.organization).annotate(connection_count=Count("connections"))
        page = page_of(self.request, sources)
        for source in page.rows:
            source.ingest_url = ingest_url(source, self.request)
        return super().get_context_data(page=page, **kwargs)


class SourceDetailView(SourceMixin, TemplateView):
    template_name = "console/sources/detail.html"

    def get_context_data(self, **kwargs):
        source = self.get_source()
        connections = source.connections.select_related("destination").order_by("created_at", "id")
        return super().get_context_data(
            source=source,
            ingest_url=ingest_url(source, self.request),
            secret_mask=secret_mask(source),
            connections=connections,
            **kwargs,
        )


def source_save(request, form: SourceForm, service, *, done: str):
    """Validate and save a source form with ``service``; answer the next page, or None when
    the form now carries the errors.

    A secret generated on request (``source_secret_generate``) is shown on the answer to this
    POST only: never stored in clear, put in the session or rendered again.
    """
    data = form.to_api()
    generated = None
    if form.cleaned_data["generate_secret"]:
        generated = services.source_secret_generate(verification_type=form.verification_type_chosen())
        data["verification_secret"] = generated
    try:
        source = call_service(form, service, serializer_class=SourceWriteSerializer, data=data, conflict_field="slug")
    except ServiceRefused:
        return None
    messages.success(request, done.format(name=source.name))
    if generated is None:
        return redirect("console:source-detail", pk=source.pk)
    response = render(request, "console/sources/secret.html", {"source": source, "secret": generated})
    add_never_cache_headers(response)
    return response


class SourceCreateView(ConsoleMixin, View):
    template_name = "console/sources/form.html"

    def get(self, request):
        return render(request, self.template_name, {"form": SourceForm(), "source": None})

    def post(self, request):
        form = SourceForm(request.POST)
        if form.is_valid():
            answer = source_save(
                request,
                form,
                lambda data: services.source_create(organization=self.organization, data=data),
                done="Created source “{name}”. Point your webhooks at its ingest URL.",
            )
            if answer is not None:
                return answer
        return render(request, self.template_name, {"form": form, "source": None})


class SourceEditView(SourceMixin, View):
    template_name = "console/sources/form.html"

    def get(self, request, pk):
        source = self.get_source()
        form = SourceForm(initial=SourceForm.initial_from(source), stored_secret_mask=secret_mask(source))
        return render(request, self.template_name, {"form": form, "source": source})

    def post(self, request, pk):
        source = self.get_source()
        form = SourceForm(request.POST, stored_secret_mask=secret_mask(source))
        if form.is_valid():
            answer = source_save(
                request,
                form,
                lambda data: services.source_update(source=source, data=data),
                done="Saved source “{name}”.",
            )
            if answer is not None:
                return answer
        return render(request, self.template_name, {"form": form, "source": self.get_source()})


class SourceDeleteView(SourceMixin, ConfirmDeleteView):
    what = "source"
    list_url = "console:source-list"
    detail_url = "console:source-detail"

    def consequences(self, source):
        n = source.connections.count()
        return [
            f"Its {n} connection{'s' if n != 1 else ''} will be deleted too.",
            "Its ingest URL will answer 404; the events already received stay.",
        ]

    def perform(self, source):
        services.source_delete(source=source)


# --- connections -----------------------------------------------------------------------------


class ConnectionListView(ConsoleMixin, TemplateView):
    template_name = "console/connections/list.html"

    def get_context_data(self, **kwargs):
        connections = Connection.objects.filter(organization=self.organization).select_related("source", "destination")
        source_id = self.request.GET.get("source_id", "")
        if ID_PARAM_RE.match(source_id):  # anything else names no source
            connections = connections.filter(source_id=source_id)
        return super().get_context_data(page=page_of(self.request, connections), **kwargs)


class ConnectionFormMixin(ConsoleMixin):
    template_name = "console/connections/form.html"

    def make_form(self, *args, current=None, **kwargs) -> ConnectionForm:
        destinations = destination_choices(self.organization)
        if current is not None and current.destination_id not in dict(destinations):
            destinations.append((current.destination_id, f"{current.destination.name} (deleted)"))
        return ConnectionForm(*args, sources=source_choices(self.organization), destinations=destinations, **kwargs)

    def save(self, form, service):
        return call_service(form, service, serializer_class=ConnectionWriteSerializer, data=dict(form.cleaned_data))


class ConnectionCreateView(ConnectionFormMixin, View):
    def get(self, request):
        form = self.make_form(initial={"source_id": request.GET.get("source_id", ""), "enabled": True})
        return render(request, self.template_name, {"form": form, "connection": None})

    def post(self, request):
        form = self.make_form(request.POST)
        if form.is_valid():
            try:
                self.save(form, lambda data: services.connection_create(organization=self.organization, data=data))
            except ServiceRefused:
                pass
            else:
                messages.success(request, "Created the connection.")
                return redirect("console:connection-list")
        return render(request, self.template_name, {"form": form, "connection": None})


class ConnectionEditView(ConnectionFormMixin, View):
    def get_connection(self) -> Connection:
        return owned(Connection.objects.select_related("source", "destination"), self.organization, self.kwargs["pk"])

    def get(self, request, pk):
        connection = self.get_connection()
        form = self.make_form(initial=ConnectionForm.initial_from(connection), current=connection)
        return render(request, self.template_name, {"form": form, "connection": connection})

    def post(self, request, pk):
        connection = self.get_connection()
        form = self.make_form(request.POST, current=connection)
        if form.is_valid():
            try:
                self.save(form, lambda data: services.connection_update(connection=connection, data=data))
            except ServiceRefused:
                pass
            else:
                messages.success(request, "Saved the connection.")
                return redirect("console:connection-list")
        return render(request, self.template_name, {"form": form, "connection": self.get_connection()})


class ConnectionDeleteView(ConfirmDeleteView):
    what = "connection"
    list_url = "console:connection-list"

    def get_object(self):
        return owned(Connection.objects.select_related("source", "destination"), self.organization, self.kwargs["pk"])

    def label(self, connection):
        return connection.name or f"{connection.source.name} → {connection.destination.name}"

    def consequences(self, connection):
        return ["New events of its source stop going to its destination; deliveries already made keep going."]

    def perform(self, connection):
        services.connection_delete(connection=connection)


# --- topics and subscriptions ------------------------------------------------------------------


def publish_url(topic: Topic, request) -> str:
    return TopicSerializer(context={"request": request}).get_publish_url(topic)


class TopicMixin(ConsoleMixin, LookupFirstMixin):
    def get_topic(self) -> Topic:
        return owned(Topic.objects.all(), self.organization, self.kwargs["pk"])

    def lookup(self):
        return self.get_topic()


class TopicListView(ConsoleMixin, TemplateView):
    template_name = "console/topics/list.html"

    def get_context_data(self, **kwargs):
        topics = Topic.objects.filter(organization=self.organization).annotate(
            subscription_count=Count("subscriptions")
        )
        page = page_of(self.request, topics)
        for topic in page.rows:
            topic.publish_url = publish_url(topic, self.request)
        return super().get_context_data(page=page, **kwargs)


class TopicDetailView(TopicMixin, View):
    template_name = "console/topics/detail.html"

    def subscription_form(self, *args, **kwargs) -> SubscriptionForm:
        return SubscriptionForm(*args, destinations=destination_choices(self.organization), **kwargs)

    def render_detail(self, topic, form, status=200):
        subscriptions = topic.subscriptions.select_related("destination").order_by("created_at", "id")
        context = {
            "topic": topic,
            "publish_url": publish_url(topic, self.request),
            "subscriptions": subscriptions,
            "form": form,
        }
        return render(self.request, self.template_name, context, status=status)

    def get(self, request, pk):
        return self.render_detail(self.get_topic(), self.subscription_form())


class SubscriptionCreateView(TopicDetailView):
    """POST from the topic page's "Subscribe a destination" form."""

    http_method_names = ["post"]

    def post(self, request, pk):
        topic = self.get_topic()
        form = self.subscription_form(request.POST)
        if form.is_valid():
            try:
                call_service(
                    form,
                    lambda data: services.subscription_create(topic=topic, data=data),
                    serializer_class=SubscriptionWriteSerializer,
                    data=dict(form.cleaned_data),
                    conflict_field="destination_id",
                )
            except ServiceRefused:
                pass
            else:
                messages.success(request, "Subscribed the destination.")
                return redirect("console:topic-detail", pk=topic.pk)
        return self.render_detail(topic, form)


class SubscriptionDeleteView(TopicMixin, ConfirmDeleteView):
    what = "subscription"

    def get_object(self):
        topic = self.get_topic()
        return get_object_or_404(
            Subscription.objects.filter(topic=topic).select_related("topic", "destination"),
            pk=self.kwargs["subscription_id"],
        )

    def label(self, subscription):
        return f"{subscription.topic.name} → {subscription.destination.name}"

    def perform(self, subscription):
        services.subscription_delete(subscription=subscription)

    def success_url(self, subscription):
        return reverse("console:topic-detail", args=[subscription.topic_id])


class TopicCreateView(ConsoleMixin, View):
    template_name = "console/topics/form.html"

    def get(self, request):
        return render(request, self.template_name, {"form": TopicForm(), "topic": None})

    def post(self, request):
        form = TopicForm(request.POST)
        if form.is_valid():
            try:
                topic = call_service(
                    form,
                    lambda data: services.topic_create(organization=self.organization, data=data),
                    serializer_class=TopicWriteSerializer,
                    data=form.to_api(),
                    conflict_field="slug",
                )
            except ServiceRefused:
                pass
            else:
                messages.success(request, f"Created topic “{topic.name}”.")
                return redirect("console:topic-detail", pk=topic.pk)
        return render(request, self.template_name, {"form": form, "topic": None})


class TopicEditView(TopicMixin, View):
    template_name = "console/topics/form.html"

    def get(self, request, pk):
        topic = self.get_topic()
        form = TopicForm(initial={"name": topic.name, "slug": topic.slug, "description": topic.description})
        return render(request, self.template_name, {"form": form, "topic": topic})

    def post(self, request, pk):
        topic = self.get_topic()
        form = TopicForm(request.POST)
        if form.is_valid():
            try:
                call_service(
                    form,
                    lambda data: services.topic_update(topic=topic, data=data),
                    serializer_class=TopicWriteSerializer,
                    data=form.to_api(),
                    conflict_field="slug",
                )
            except ServiceRefused:
                pass
            else:
                messages.success(request, f"Saved topic “{topic.name}”.")
                return redirect("console:topic-detail", pk=topic.pk)
        return render(request, self.template_name, {"form": form, "topic": self.get_topic()})


class TopicDeleteView(TopicMixin, ConfirmDeleteView):
    what = "topic"
    list_url = "console:topic-list"
    detail_url = "console:topic-detail"

    def consequences(self, topic):
        n = topic.subscriptions.count()
        return [
            f"Its {n} subscription{'s' if n != 1 else ''} will be deleted too.",
            "Its publish URL will answer 404; the events already published stay.",
        ]

    def perform(self, topic):
        services.topic_delete(topic=topic)
