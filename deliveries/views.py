"""The delivery API (spec §6 and §7): attempts, retries, replay jobs, dead letters, test send.

Views parse input, call one service or selector and render; writes live in services.
"""

from __future__ import annotations

import django_filters
from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from deliveries import selectors, services
from deliveries.models import AttemptStatus, DeliveryAttempt
from deliveries.serializers import (
    DeadLetterRetrySerializer,
    DeadLetterSerializer,
    DeliveryAttemptSerializer,
    ReplayCreateSerializer,
    ReplayJobSerializer,
)
from hookstream.api.pagination import CreatedCursorPagination
from hookstream.api.serializers import ErrorSerializer
from hookstream.api.viewsets import OrganizationScopedReadOnlyViewSet
from intake.models import Event, Source


class DeliveryAttemptFilter(django_filters.FilterSet):
    event_id = django_filters.CharFilter(field_name="event_id")
    destination_id = django_filters.CharFilter(field_name="destination_id")
    connection_id = django_filters.CharFilter(field_name="connection_id")
    status = django_filters.ChoiceFilter(choices=AttemptStatus.choices)
    # Strict: "maybe" is a 400, not a silently ignored filter; 1/0 as the hosted docs write it.
    is_dlq = django_filters.TypedChoiceFilter(
        choices=[(v, v) for v in ("true", "false", "1", "0")], coerce=lambda value: value in ("true", "1")
    )

    class Meta:
        model = DeliveryAttempt
        fields = ["event_id", "destination_id", "connection_id", "status", "is_dlq"]


class RetryResultSerializer(serializers.Serializer):
    retried = serializers.ListField(child=serializers.DictField())
    errors = serializers.ListField(child=serializers.DictField())


class DeliveryAttemptViewSet(OrganizationScopedReadOnlyViewSet):
    """``GET /v1/delivery-attempts`` (filters), ``GET …/<id>``, ``POST …/<id>/retry``."""

    queryset = DeliveryAttempt.objects.all()
    serializer_class = DeliveryAttemptSerializer
    filterset_class = DeliveryAttemptFilter
    pagination_key = "delivery_attempts"

    @extend_schema(
        summary="Retry the delivery of this attempt",
        request=None,
        responses={202: RetryResultSerializer, 409: ErrorSerializer},
    )
    def retry(self, request, pk=None):
        attempt = self.get_object()
        delivery = selectors.delivery_for_attempt(attempt=attempt)
        services.delivery_retry_or_409(delivery=delivery)
        body = {"retried": [{"delivery_id": delivery.pk, "destination_id": delivery.destination_id}], "errors": []}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class EventRetryView(APIView):
    """``POST /v1/events/<id>/retry``: every failed or dead delivery of the event."""

    @extend_schema(summary="Retry an event's failed deliveries", request=None, responses={202: RetryResultSerializer})
    def post(self, request, pk):
        event = Event.objects.filter(organization=request._request.organization, pk=pk).first()
        if event is None:
            raise Http404("No such event.")
        return Response(services.event_retry(event=event), status=status.HTTP_202_ACCEPTED)


def _object(data) -> dict:
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    return data


def _job_body(job) -> dict:
    data = ReplayJobSerializer(services.replay_job_progress(job=job)).data
    data["from"] = data.pop("range_from")
    data["to"] = data.pop("range_to")
    return {"job": data}


# The OpenAPI shapes of the job envelope (with the wire's "from"/"to") and of a test send.
_JOB_RESPONSE = inline_serializer(
    "ReplayJobResponse",
    fields={
        "job": inline_serializer(
            "ReplayJobWire",
            fields={
                "id": serializers.CharField(),
                "kind": serializers.CharField(),
                "status": serializers.CharField(),
                "destination_id": serializers.CharField(),
                "source_id": serializers.CharField(allow_null=True),
                "from": serializers.DateTimeField(allow_null=True),
                "to": serializers.DateTimeField(allow_null=True),
                **{
                    name: serializers.IntegerField()
                    for name in ("rate_limit", "max_events", "total", "processed", "succeeded", "failed")
                },
                "error": serializers.CharField(),
                "started_at": serializers.DateTimeField(),
                "completed_at": serializers.DateTimeField(allow_null=True),
                "created_at": serializers.DateTimeField(),
            },
        )
    },
)
_TEST_SEND_RESPONSE = inline_serializer(
    "DestinationTestSendResponse",
    fields={
        "event_id": serializers.CharField(),
        "delivery_id": serializers.CharField(),
        "destination_id": serializers.CharField(),
        "status": serializers.CharField(),
    },
)


class ReplayCreateView(APIView):
    """``POST /v1/replay`` ``{destination_id, source_id?, from, to, rate_limit, max_events}``."""

    @extend_schema(
        summary="Replay a time range of events to a destination",
        request=ReplayCreateSerializer,
        responses={202: _JOB_RESPONSE},
    )
    def post(self, request):
        organization = request._request.organization
        payload = ReplayCreateSerializer(data=_object(request.data))
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            destination = selectors.destination_for_organization(
                organization=organization, destination_id=data["destination_id"]
            )
        except Http404:
            raise ValidationError({"destination_id": ["No such destination."]}) from None
        source = None
        if data.get("source_id"):
            source = Source.objects.filter(organization=organization, pk=data["source_id"]).first()
            if source is None:
                raise ValidationError({"source_id": ["No such source."]})
        job = services.replay_job_create(
            organization=organization,
            destination=destination,
            source=source,
            range_from=data["from"],
            range_to=data["to"],
            rate_limit=data["rate_limit"],
            max_events=data["max_events"],
        )
        return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)


class ReplayDetailView(APIView):
    """``GET /v1/replay/<id>``: progress of a replay or dead-letter-retry job."""

    @extend_schema(summary="A replay job's progress", responses={200: _JOB_RESPONSE})
    def get(self, request, pk):
        job = selectors.replay_job_for_organization(organization=request._request.organization, job_id=pk)
        return Response(_job_body(job))


class DeadLetterListView(APIView):
    """``GET /v1/destinations/<id>/dead-letters``, newest first, cursor pagination."""

    pagination_key = "dead_letters"
    pagination_class = CreatedCursorPagination  # documents the envelope and its parameters

    @extend_schema(
        summary="A destination's dead letters",
        responses={200: DeadLetterSerializer(many=True)},
    )
    def get(self, request, pk):
        destination = selectors.destination_for_organization(
            organization=request._request.organization, destination_id=pk
        )
        paginator = CreatedCursorPagination()
        rows = paginator.paginate_queryset(
            selectors.dead_letters_for_destination(destination=destination), request, view=self
        )
        return paginator.get_paginated_response(DeadLetterSerializer(rows, many=True).data)


class DeadLetterRetryView(APIView):
    """``POST /v1/destinations/<id>/dead-letters/retry`` ``{from?, to?}``: a bulk job."""

    @extend_schema(
        summary="Retry a destination's dead letters (optionally by time range)",
        request=inline_serializer(
            "DeadLetterRetryRequest",
            fields={
                "from": serializers.DateTimeField(required=False, allow_null=True),
                "to": serializers.DateTimeField(required=False, allow_null=True),
            },
        ),
        responses={202: _JOB_RESPONSE},
    )
    def post(self, request, pk):
        organization = request._request.organization
        destination = selectors.destination_for_organization(organization=organization, destination_id=pk)
        payload = DeadLetterRetrySerializer(data=_object(request.data or {}))
        payload.is_valid(raise_exception=True)
        job = services.dead_letter_retry_job_create(
            organization=organization,
            destination=destination,
            range_from=payload.validated_data.get("from"),
            range_to=payload.validated_data.get("to"),
        )
        return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)


class DestinationTestView(APIView):
    """``POST /v1/destinations/<id>/test``: a sample event through the real pipeline."""

    @extend_schema(summary="Send a test event to a destination", request=None, responses={202: _TEST_SEND_RESPONSE})
    def post(self, request, pk):
        destination = selectors.destination_for_organization(
            organization=request._request.organization, destination_id=pk
        )
        delivery = services.destination_test_send(destination=destination)
        body = {
            "event_id": delivery.event_id,
            "delivery_id": delivery.pk,
            "destination_id": destination.pk,
            "status": delivery.status,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
