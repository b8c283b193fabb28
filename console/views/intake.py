"""Sources, connections and topics (with subscriptions) in the console.

Every write goes through ``intake.services`` with the dict the REST API would pass, after the
API's write serializer (``ServiceFormView``); refusals are shown beside the form's fields.
"""

from __future__ import annotations

from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.generic import TemplateView

from console.base import ConsoleMixin, LookupFirstMixin
from console.forms.intake import ConnectionForm, SourceForm, SubscriptionForm, TopicForm
from console.paging import page_of
from console.views.generic import DeleteView, ServiceFormView
from console.views.routes import tester_form
from destinations.selectors import destination_choices
from hookstream import crypto
from intake import selectors, services
from intake.models import Source, Topic
from intake.serializers import (
    ConnectionWriteSerializer,
    SourceSerializer,
    SourceWriteSerializer,
    SubscriptionWriteSerializer,
    TopicSerializer,
    TopicWriteSerializer,
)
from intake.views import ID_PARAM_RE

# --- sources -------------------------------------------------------------------------------


def ingest_url(source: Source, request) -> str:
    return SourceSerializer(context={"request": request}).get_ingest_url(source)


def secret_mask(source: Source) -> str:
    """The stored verification secret as the API answers it (``****`` + last 4), or ""."""
    try:
        return SourceSerializer().get_verification_secret(source) or ""
    except ValueError:  # encrypted with another key: still never shown
        return crypto.MASK


class SourceLookup(LookupFirstMixin):
    def lookup(self) -> Source:
        return selectors.source_get(organization=self.organization, source_id=self.kwargs["pk"])


class SourceListView(ConsoleMixin, TemplateView):
    template_name = "console/sources/list.html"

    def get_context_data(self, **kwargs):
        page = page_of(self.request, selectors.sources_for_organization(organization=self.organization))
        for source in page.rows:
            source.ingest_url = ingest_url(source, self.request)
        return super().get_context_data(page=page, **kwargs)


class SourceDetailView(ConsoleMixin, SourceLookup, TemplateView):
    template_name = "console/sources/detail.html"

    def get_context_data(self, **kwargs):
        source = self.lookup()
        return super().get_context_data(
            source=source,
            ingest_url=ingest_url(source, self.request),
            secret_mask=secret_mask(source),
            connections=selectors.source_connections(source=source),
            **kwargs,
        )


class SourceFormView(ServiceFormView):
    """A secret generated on request (``source_secret_generate``) is shown on the answer to
    this POST only: never stored in clear, put in the session or rendered again."""

    template_name = "console/sources/form.html"
    form_class = SourceForm
    serializer_class = SourceWriteSerializer
    conflict_field = "slug"
    context_object_name = "source"

    def form_data(self, form) -> dict:
        data = form.to_api()
        self.generated = None
        if form.cleaned_data["generate_secret"]:
            self.generated = services.source_secret_generate(verification_type=form.verification_type_chosen())
            data["verification_secret"] = self.generated
        return data

    def success_url(self, source) -> str:
        return reverse("console:source-detail", args=[source.pk])

    def done(self, source):
        if self.generated is None:
            return super().done(source)
        super().done(source)  # the message; the secret page replaces the redirect
        response = render(self.request, "console/sources/secret.html", {"source": source, "secret": self.generated})
        add_never_cache_headers(response)
        return response


class SourceCreateView(SourceFormView):
    success_message = "Created source “{obj.name}”. Point your webhooks at its ingest URL."

    def service(self, data):
        return services.source_create(organization=self.organization, data=data)


class SourceEditView(SourceLookup, SourceFormView):
    success_message = "Saved source “{obj.name}”."

    def get_form_kwargs(self) -> dict:
        return {"stored_secret_mask": secret_mask(self.object)}

    def get_initial(self) -> dict:
        return SourceForm.initial_from(self.object)

    def service(self, data):
        return services.source_update(source=self.object, data=data)


class SourceDeleteView(SourceLookup, DeleteView):
    what = "source"
    list_url = "console:source-list"
    detail_url = "console:source-detail"

    def consequences(self, source):
        n = selectors.source_connections(source=source).count()
        return [
            f"Its {n} connection{'s' if n != 1 else ''} will be deleted too.",
            "Its ingest URL will answer 404; the events already received stay.",
        ]

    def perform(self, source):
        services.source_delete(source=source)


# --- connections -----------------------------------------------------------------------------


class ConnectionLookup(LookupFirstMixin):
    def lookup(self):
        return selectors.connection_get(organization=self.organization, connection_id=self.kwargs["pk"])


class ConnectionListView(ConsoleMixin, TemplateView):
    template_name = "console/connections/list.html"

    def get_context_data(self, **kwargs):
        source_id = self.request.GET.get("source_id", "")
        connections = selectors.connections_for_organization(
            organization=self.organization,
            source_id=source_id if ID_PARAM_RE.match(source_id) else None,  # anything else names no source
        )
        return super().get_context_data(page=page_of(self.request, connections), **kwargs)


class ConnectionFormView(ServiceFormView):
    template_name = "console/connections/form.html"
    form_class = ConnectionForm
    serializer_class = ConnectionWriteSerializer
    context_object_name = "connection"
    success_message = "Saved the connection."

    def get_form_kwargs(self) -> dict:
        destinations = destination_choices(organization=self.organization)
        current = self.object
        if current is not None and current.destination_id not in dict(destinations):
            destinations.append((current.destination_id, f"{current.destination.name} (deleted)"))
        return {"sources": selectors.source_choices(organization=self.organization), "destinations": destinations}

    def get_context_data(self, form) -> dict:
        source_id = form["source_id"].value() or ""
        tester = tester_form(self.organization, source_id=source_id)
        return {**super().get_context_data(form), "tester": tester}

    def success_url(self, connection) -> str:
        return reverse("console:connection-list")


class ConnectionCreateView(ConnectionFormView):
    success_message = "Created the connection."

    def get_initial(self) -> dict:
        return {"source_id": self.request.GET.get("source_id", ""), "enabled": True}

    def service(self, data):
        return services.connection_create(organization=self.organization, data=data)


class ConnectionEditView(ConnectionLookup, ConnectionFormView):
    def get_initial(self) -> dict:
        return ConnectionForm.initial_from(self.object)

    def service(self, data):
        return services.connection_update(connection=self.object, data=data)


class ConnectionDeleteView(ConnectionLookup, DeleteView):
    what = "connection"
    list_url = "console:connection-list"

    def label(self, connection):
        return connection.name or f"{connection.source.name} → {connection.destination.name}"

    def consequences(self, connection):
        return ["New events of its source stop going to its destination; deliveries already made keep going."]

    def perform(self, connection):
        services.connection_delete(connection=connection)


# --- topics and subscriptions ------------------------------------------------------------------


def publish_url(topic: Topic, request) -> str:
    return TopicSerializer(context={"request": request}).get_publish_url(topic)


class TopicLookup(LookupFirstMixin):
    def lookup(self) -> Topic:
        return selectors.topic_get(organization=self.organization, topic_id=self.kwargs["pk"])


class TopicListView(ConsoleMixin, TemplateView):
    template_name = "console/topics/list.html"

    def get_context_data(self, **kwargs):
        page = page_of(self.request, selectors.topics_for_organization(organization=self.organization))
        for topic in page.rows:
            topic.publish_url = publish_url(topic, self.request)
        return super().get_context_data(page=page, **kwargs)


def topic_page_context(topic: Topic, form: SubscriptionForm, request) -> dict:
    """The topic page: its publish URL, its subscriptions and the "Subscribe a destination" form."""
    return {
        "topic": topic,
        "publish_url": publish_url(topic, request),
        "subscriptions": selectors.topic_subscriptions(topic=topic),
        "form": form,
        "tester": tester_form(topic.organization_id, topic_id=topic.pk),
    }


class TopicDetailView(ConsoleMixin, TopicLookup, TemplateView):
    template_name = "console/topics/detail.html"

    def get_context_data(self, **kwargs):
        form = SubscriptionForm(destinations=destination_choices(organization=self.organization))
        return super().get_context_data(**topic_page_context(self.lookup(), form, self.request), **kwargs)


class SubscriptionCreateView(TopicLookup, ServiceFormView):
    """POST from the topic page's "Subscribe a destination" form; a refusal shows the topic
    page again with the errors."""

    http_method_names = ["post"]
    template_name = "console/topics/detail.html"
    form_class = SubscriptionForm
    serializer_class = SubscriptionWriteSerializer
    conflict_field = "destination_id"
    success_message = "Subscribed the destination."

    def get_form_kwargs(self) -> dict:
        return {"destinations": destination_choices(organization=self.organization)}

    def get_context_data(self, form) -> dict:
        return topic_page_context(self.object, form, self.request)

    def service(self, data):
        return services.subscription_create(topic=self.object, data=data)

    def success_url(self, subscription) -> str:
        return reverse("console:topic-detail", args=[self.object.pk])


class SubscriptionDeleteView(TopicLookup, DeleteView):
    what = "subscription"

    def lookup(self):
        topic = super().lookup()
        return selectors.subscription_get(topic=topic, subscription_id=self.kwargs["subscription_id"])

    def label(self, subscription):
        return f"{subscription.topic.name} → {subscription.destination.name}"

    def perform(self, subscription):
        services.subscription_delete(subscription=subscription)

    def success_url(self, subscription) -> str:
        return reverse("console:topic-detail", args=[subscription.topic_id])


class TopicFormView(ServiceFormView):
    template_name = "console/topics/form.html"
    form_class = TopicForm
    serializer_class = TopicWriteSerializer
    conflict_field = "slug"
    context_object_name = "topic"

    def success_url(self, topic) -> str:
        return reverse("console:topic-detail", args=[topic.pk])


class TopicCreateView(TopicFormView):
    success_message = "Created topic “{obj.name}”."

    def service(self, data):
        return services.topic_create(organization=self.organization, data=data)


class TopicEditView(TopicLookup, TopicFormView):
    success_message = "Saved topic “{obj.name}”."

    def get_initial(self) -> dict:
        topic = self.object
        return {"name": topic.name, "slug": topic.slug, "description": topic.description}

    def service(self, data):
        return services.topic_update(topic=self.object, data=data)


class TopicDeleteView(TopicLookup, DeleteView):
    what = "topic"
    list_url = "console:topic-list"
    detail_url = "console:topic-detail"

    def consequences(self, topic):
        n = selectors.topic_subscriptions(topic=topic).count()
        return [
            f"Its {n} subscription{'s' if n != 1 else ''} will be deleted too.",
            "Its publish URL will answer 404; the events already published stay.",
        ]

    def perform(self, topic):
        services.topic_delete(topic=topic)
