"""The intake API (spec §5–§6): sources, connections, topics with subscriptions and publish,
and events. Ingest itself is ``intake.ingest`` (no API key)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from deliveries import fanout
from deliveries import selectors as delivery_selectors
from deliveries.serializers import EventDetailSerializer
from hookstream.api.exceptions import PayloadTooLarge
from hookstream.api.serializers import ErrorSerializer, SuccessSerializer
from hookstream.api.viewsets import OrganizationScopedReadOnlyViewSet, OrganizationScopedViewSet
from intake import selectors, services
from intake.ingest import INGEST_METHODS
from intake.models import Connection, DedupStatus, Event, EventVerificationStatus, Source, Subscription, Topic
from intake.serializers import (
    ConnectionSerializer,
    ConnectionWriteSerializer,
    EventSerializer,
    PublishedSerializer,
    SourceSerializer,
    SourceTemplateListSerializer,
    SourceWriteSerializer,
    SubscriptionSerializer,
    SubscriptionWriteSerializer,
    TopicDetailSerializer,
    TopicSerializer,
    TopicWriteSerializer,
)
from intake.source_templates import all_source_templates
from intake.verification import client_ip

MAX_IDEMPOTENCY_KEY_LENGTH = 200
# Ids and slugs: anything else in a path or an id filter cannot name a row (and a NUL byte
# would reach the database as an error, not a 404).
LOOKUP_REGEX = r"[A-Za-z0-9_-]+"
ID_PARAM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _id_param(params, name: str) -> str | None:
    value = params.get(name)
    if not value:
        return None
    if not ID_PARAM_RE.match(value):
        raise exceptions.ValidationError({name: ["Not a valid id."]})
    return value


def _validated(serializer_class, request):
    payload = serializer_class(data=request.data)
    payload.is_valid(raise_exception=True)
    return payload.validated_data


@extend_schema_view(
    list=extend_schema(summary="List sources", description="Newest first, cursor-paginated."),
    retrieve=extend_schema(summary="Retrieve a source"),
    create=extend_schema(
        summary="Create a source",
        request=SourceWriteSerializer,
        responses={201: SourceSerializer, 409: ErrorSerializer},
    ),
    partial_update=extend_schema(
        summary="Update a source",
        description="All fields optional; a masked verification_secret sent back keeps the stored one.",
        request=SourceWriteSerializer,
        responses={200: SourceSerializer, 409: ErrorSerializer},
    ),
    destroy=extend_schema(summary="Delete a source", responses={200: SuccessSerializer}),
)
class SourceViewSet(OrganizationScopedViewSet):
    lookup_value_regex = LOOKUP_REGEX
    queryset = Source.objects.all()
    serializer_class = SourceSerializer
    pagination_key = "sources"

    def create(self, request, *args, **kwargs):
        source = services.source_create(
            organization=self.get_organization(), data=_validated(SourceWriteSerializer, request)
        )
        return Response(SourceSerializer(source, context={"request": request}).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        source = services.source_update(source=self.get_object(), data=_validated(SourceWriteSerializer, request))
        return Response(SourceSerializer(source, context={"request": request}).data)

    def destroy(self, request, *args, **kwargs):
        services.source_delete(source=self.get_object())
        return Response({"success": True})

    @extend_schema(summary="List source templates", responses={200: SourceTemplateListSerializer})
    @action(detail=False, methods=["get"], pagination_class=None)
    def templates(self, request):
        return Response({"templates": [template.as_dict() for template in all_source_templates()]})


@extend_schema_view(
    list=extend_schema(
        summary="List connections",
        description="Newest first, cursor-paginated.",
        parameters=[
            OpenApiParameter("source_id", str, description="Only this source's connections."),
            OpenApiParameter("destination_id", str, description="Only connections to this destination."),
        ],
    ),
    retrieve=extend_schema(summary="Retrieve a connection"),
    create=extend_schema(
        summary="Create a connection",
        request=ConnectionWriteSerializer,
        responses={201: ConnectionSerializer},
    ),
    partial_update=extend_schema(
        summary="Update a connection", request=ConnectionWriteSerializer, responses={200: ConnectionSerializer}
    ),
    destroy=extend_schema(summary="Delete a connection", responses={200: SuccessSerializer}),
)
class ConnectionViewSet(OrganizationScopedViewSet):
    lookup_value_regex = LOOKUP_REGEX
    query_params = ("source_id", "destination_id")
    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    pagination_key = "connections"

    def get_queryset(self):
        queryset = super().get_queryset()
        params = self.request.query_params
        source_id = _id_param(params, "source_id")
        destination_id = _id_param(params, "destination_id")
        if source_id:
            queryset = queryset.filter(source_id=source_id)
        if destination_id:
            queryset = queryset.filter(destination_id=destination_id)
        return queryset

    def create(self, request, *args, **kwargs):
        connection = services.connection_create(
            organization=self.get_organization(), data=_validated(ConnectionWriteSerializer, request)
        )
        return Response(ConnectionSerializer(connection).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        connection = services.connection_update(
            connection=self.get_object(), data=_validated(ConnectionWriteSerializer, request)
        )
        return Response(ConnectionSerializer(connection).data)

    def destroy(self, request, *args, **kwargs):
        services.connection_delete(connection=self.get_object())
        return Response({"success": True})


@extend_schema_view(
    list=extend_schema(summary="List topics", description="Newest first, cursor-paginated."),
    retrieve=extend_schema(summary="Retrieve a topic with its subscriptions", responses={200: TopicDetailSerializer}),
    create=extend_schema(
        summary="Create a topic",
        request=TopicWriteSerializer,
        responses={201: TopicDetailSerializer, 409: ErrorSerializer},
    ),
    partial_update=extend_schema(
        summary="Update a topic",
        request=TopicWriteSerializer,
        responses={200: TopicDetailSerializer, 409: ErrorSerializer},
    ),
    destroy=extend_schema(summary="Delete a topic", responses={200: SuccessSerializer}),
)
class TopicViewSet(OrganizationScopedViewSet):
    lookup_value_regex = LOOKUP_REGEX
    queryset = Topic.objects.all()
    serializer_class = TopicSerializer
    pagination_key = "topics"

    def get_serializer_class(self):
        return TopicDetailSerializer if self.action == "retrieve" else TopicSerializer

    def retrieve(self, request, *args, **kwargs):
        return Response(self._detail(self.get_object()))

    def create(self, request, *args, **kwargs):
        topic = services.topic_create(
            organization=self.get_organization(), data=_validated(TopicWriteSerializer, request)
        )
        return Response(self._detail(topic), status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        topic = services.topic_update(topic=self.get_object(), data=_validated(TopicWriteSerializer, request))
        return Response(self._detail(topic))

    def destroy(self, request, *args, **kwargs):
        services.topic_delete(topic=self.get_object())
        return Response({"success": True})

    @extend_schema(
        methods=["GET"],
        operation_id="topics_subscriptions_list",
        summary="List a topic's subscriptions",
        responses={
            200: inline_serializer("SubscriptionList", fields={"subscriptions": SubscriptionSerializer(many=True)})
        },
    )
    @extend_schema(
        methods=["POST"],
        summary="Subscribe a destination to a topic",
        request=SubscriptionWriteSerializer,
        responses={201: SubscriptionSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def subscriptions(self, request, pk=None):
        topic = self.get_object()
        if request.method == "GET":
            rows = topic.subscriptions.order_by("created_at", "id")
            return Response({"subscriptions": SubscriptionSerializer(rows, many=True).data})
        subscription = services.subscription_create(topic=topic, data=_validated(SubscriptionWriteSerializer, request))
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("subscription_id", str, OpenApiParameter.PATH)])
    @extend_schema(
        methods=["GET"],
        operation_id="topics_subscription_retrieve",
        summary="Retrieve a subscription",
        responses={200: SubscriptionSerializer},
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Update a subscription's filters or transform",
        request=SubscriptionWriteSerializer,
        responses={200: SubscriptionSerializer},
    )
    @extend_schema(methods=["DELETE"], summary="Unsubscribe", responses={200: SuccessSerializer})
    @action(
        detail=True,
        methods=["get", "patch", "delete"],
        url_path=r"subscriptions/(?P<subscription_id>[A-Za-z0-9_-]+)",
        url_name="subscription-detail",
        pagination_class=None,
    )
    def subscription_detail(self, request, pk=None, subscription_id=None):
        topic = self.get_object()
        subscription = Subscription.objects.filter(topic=topic, pk=subscription_id).first()
        if subscription is None:
            raise Http404("No such subscription.")
        if request.method == "DELETE":
            services.subscription_delete(subscription=subscription)
            return Response({"success": True})
        if request.method == "PATCH":
            data = _validated(SubscriptionWriteSerializer, request)
            if data.get("destination_id") not in (None, subscription.destination_id):
                raise exceptions.ValidationError(
                    {"destination_id": ["A subscription's destination cannot change; subscribe the other one."]}
                )
            subscription = services.subscription_update(subscription=subscription, data=data)
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        summary="Publish an event to a topic",
        description="The JSON body is the event. An Idempotency-Key header makes a repeat within 24 hours "
        "answer with the first event (200) instead of storing another (202).",
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        request={"application/json": {"type": "object"}},
        responses={202: PublishedSerializer, 200: PublishedSerializer, 413: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], pagination_class=None)
    def publish(self, request, pk=None):
        # ``pk`` here is the slug of the publish URL (an id is accepted too).
        topic = selectors.topic_for_publish(organization=self.get_organization(), slug_or_id=pk)
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and (len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable()):
            raise exceptions.ValidationError(
                {"Idempotency-Key": [f"At most {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters."]}
            )
        try:
            body = request.body
        except RequestDataTooBig:
            body = None
        if body is None or len(body) > settings.HOOKSTREAM_MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {settings.HOOKSTREAM_MAX_BODY_BYTES} bytes.")
        incoming = services.Incoming(
            method="POST",
            body=body,
            headers={k: v for k, v in request.headers.items() if k.lower() not in services.CREDENTIAL_HEADERS},
            content_type=request.META.get("CONTENT_TYPE", "")[:200],
            source_ip=client_ip(request.META, settings.HOOKSTREAM_TRUSTED_PROXY_HEADERS),
        )
        stored = fanout.topic_publish(topic=topic, incoming=incoming, idempotency_key=key)
        answer = {"event_id": stored.event.pk, "topic": topic.slug, "received_at": stored.event.received_at}
        return Response(
            PublishedSerializer(answer).data, status=status.HTTP_200_OK if stored.replayed else status.HTTP_202_ACCEPTED
        )

    def _detail(self, topic) -> dict:
        topic = Topic.objects.prefetch_related("subscriptions").get(pk=topic.pk)
        return TopicDetailSerializer(topic, context={"request": self.request}).data


def _timestamp_param(params, name):
    raw = params.get(name)
    if not raw:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise exceptions.ValidationError({name: ["An ISO 8601 timestamp with a time zone, e.g. 2025-01-31T12:00:00Z."]})
    return value


@extend_schema_view(
    list=extend_schema(
        summary="List events",
        description="Newest first, cursor-paginated. status is derived from the event's deliveries.",
        parameters=[
            OpenApiParameter("source_id", str),
            OpenApiParameter("status", str, enum=list(delivery_selectors.EventStatus.ALL)),
            OpenApiParameter("after", str, description="Received at or after this ISO 8601 time."),
            OpenApiParameter("before", str, description="Received before this ISO 8601 time."),
            OpenApiParameter("method", str, enum=list(INGEST_METHODS)),
            OpenApiParameter("verification_status", str, enum=list(EventVerificationStatus.values)),
            OpenApiParameter("dedup_status", str, enum=list(DedupStatus.values)),
            OpenApiParameter(
                "search",
                str,
                description="An event id, an idempotency key, or text found in the body (case-insensitive; "
                f"at least {selectors.SEARCH_MIN_BODY_CHARS} characters for the body).",
            ),
        ],
    ),
    retrieve=extend_schema(
        summary="Retrieve an event with its headers, body, deliveries and delivery attempts",
        responses={200: EventDetailSerializer},
    ),
)
class EventViewSet(OrganizationScopedReadOnlyViewSet):
    lookup_value_regex = LOOKUP_REGEX
    serializer_class = EventSerializer
    pagination_key = "events"
    query_params = ("source_id", "status", "after", "before", "method", "verification_status", "dedup_status", "search")
    # Newest first by arrival: the after/before filters are on received_at too, so one index
    # (intake migration 0003, event_org_received) serves the order, the cursor and the range.
    cursor_field = "received_at"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        queryset = delivery_selectors.events_for_organization(organization=self.get_organization())
        params = self.request.query_params
        source_id = _id_param(params, "source_id")
        if source_id:
            queryset = queryset.filter(source_id=source_id)
        if "status" in params:
            condition = delivery_selectors.STATUS_CONDITIONS.get(params["status"])
            if condition is None:
                choices = ", ".join(delivery_selectors.EventStatus.ALL)
                raise exceptions.ValidationError({"status": [f"One of: {choices}."]})
            queryset = queryset.filter(condition)
        after = _timestamp_param(params, "after")
        before = _timestamp_param(params, "before")
        if after:
            queryset = queryset.filter(received_at__gte=after)
        if before:
            queryset = queryset.filter(received_at__lt=before)
        for name, choices in (
            ("method", INGEST_METHODS),
            ("verification_status", EventVerificationStatus.values),
            ("dedup_status", DedupStatus.values),
        ):
            if name in params:
                if params[name] not in choices:
                    raise exceptions.ValidationError({name: [f"One of: {', '.join(choices)}."]})
                queryset = queryset.filter(**{name: params[name]})
        if params.get("search", "").strip():
            queryset = selectors.events_search(queryset, params["search"].strip()[:200])
        return queryset

    def retrieve(self, request, *args, **kwargs):
        event = delivery_selectors.event_detail(organization=self.get_organization(), event_id=kwargs["pk"])
        return Response(EventDetailSerializer(event).data)
