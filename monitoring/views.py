"""The monitoring API (spec §8). Views parse input, call one service or selector, render."""

from __future__ import annotations

from datetime import UTC, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from destinations.models import Destination
from hookstream.api.exceptions import Conflict
from hookstream.api.params import query_params_check
from hookstream.api.serializers import ErrorSerializer, SuccessSerializer
from hookstream.api.viewsets import OrganizationScopedMixin, OrganizationScopedViewSet
from intake.models import Source
from monitoring import alerts, rollups, selectors, services
from monitoring.models import AlertRule, Issue, NotificationChannel
from monitoring.serializers import (
    AlertRuleSerializer,
    DeliverySeriesSerializer,
    IssueDetailSerializer,
    IssueRetryResultSerializer,
    IssueSerializer,
    IssueSummarySerializer,
    IssueUpdateSerializer,
    LatencySeriesSerializer,
    NotificationChannelSerializer,
    NotificationSerializer,
    OverviewSerializer,
    VolumeSeriesSerializer,
)

_ISSUE_FILTERS = [
    OpenApiParameter(
        "status", OpenApiTypes.STR, enum=list(selectors.ISSUE_STATUS_FILTERS), description="Default open."
    ),
    OpenApiParameter("destination_id", OpenApiTypes.STR),
]


@extend_schema_view(
    list=extend_schema(summary="List issues (failures grouped per destination and kind)", parameters=_ISSUE_FILTERS),
    retrieve=extend_schema(summary="An issue, with its recent failed attempts", responses={200: IssueDetailSerializer}),
    partial_update=extend_schema(
        summary="Acknowledge, resolve, reopen or snooze an issue",
        request=IssueUpdateSerializer,
        responses={200: IssueDetailSerializer, 409: ErrorSerializer},
    ),
)
class IssueViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    query_params = ("status", "destination_id")
    queryset = Issue.objects.select_related("destination")
    serializer_class = IssueSerializer
    pagination_key = "issues"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.action != "list":
            return super().get_queryset()
        wanted = self.request.query_params.get("status", "open")
        if wanted not in selectors.ISSUE_STATUS_FILTERS:
            raise ValidationError({"status": [f"Must be one of {', '.join(selectors.ISSUE_STATUS_FILTERS)}."]})
        return selectors.issues_for_organization(
            organization=self.get_organization(),
            status=wanted,
            destination_id=self.request.query_params.get("destination_id") or None,
        )

    def retrieve(self, request, *args, **kwargs):
        return Response(IssueDetailSerializer(self.get_object()).data)

    def partial_update(self, request, *args, **kwargs):
        issue = self.get_object()
        payload = IssueUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            services.issue_update(issue=issue, status=data.get("status"), snoozed_until=data.get("snoozed_until", ...))
        except ValueError as exc:
            raise Conflict(f"Issue {issue.pk} cannot be reopened: {exc}.") from None
        return Response(IssueDetailSerializer(issue).data)

    @extend_schema(summary="How many issues per status", responses={200: IssueSummarySerializer})
    def summary(self, request):
        return Response(selectors.issue_summary(organization=self.get_organization()))

    @extend_schema(
        summary="Retry the issue's failed deliveries", request=None, responses={202: IssueRetryResultSerializer}
    )
    def retry(self, request, pk=None):
        result = services.issue_retry(issue=self.get_object())
        return Response(result, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List notification channels"),
    create=extend_schema(summary="Create a notification channel (webhook or email)"),
    retrieve=extend_schema(summary="A notification channel"),
    partial_update=extend_schema(summary="Change a notification channel"),
    destroy=extend_schema(summary="Delete a notification channel", responses={200: SuccessSerializer}),
)
class NotificationChannelViewSet(OrganizationScopedViewSet):
    queryset = NotificationChannel.objects.all()
    serializer_class = NotificationChannelSerializer
    pagination_key = "notification_channels"

    def perform_create(self, serializer):
        serializer.save(organization=self.get_organization())

    def destroy(self, request, *args, **kwargs):
        self.get_object().delete()
        return Response({"success": True})

    @extend_schema(
        summary="Send a sample notification to this channel",
        request=None,
        responses={202: NotificationSerializer},
    )
    def test(self, request, pk=None):
        notification = alerts.channel_test(channel=self.get_object())
        return Response(NotificationSerializer(notification).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List alert rules"),
    create=extend_schema(summary="Create an alert rule"),
    retrieve=extend_schema(summary="An alert rule"),
    partial_update=extend_schema(summary="Change an alert rule"),
    destroy=extend_schema(summary="Delete an alert rule", responses={200: SuccessSerializer}),
)
class AlertRuleViewSet(OrganizationScopedViewSet):
    queryset = AlertRule.objects.select_related("source", "destination").prefetch_related("channels")
    serializer_class = AlertRuleSerializer
    pagination_key = "alert_rules"

    def perform_create(self, serializer):
        serializer.save(organization=self.get_organization())

    def destroy(self, request, *args, **kwargs):
        self.get_object().delete()
        return Response({"success": True})


# --- metrics over time ------------------------------------------------------------------------

_GRANULARITIES = {"minute": timedelta(hours=24), "hour": timedelta(days=92), "day": timedelta(days=400)}


def _range(request, view) -> tuple:
    """``after``, ``before`` (default: the last 24 hours) and ``granularity`` (default hour);
    any parameter the view does not take is a 400 naming it."""
    query_params_check(request, view)
    params = request.query_params
    granularity = params.get("granularity", "hour")
    if granularity not in _GRANULARITIES:
        raise ValidationError({"granularity": ["One of minute, hour, day."]})
    now = timezone.now()
    values = {}
    for name, default in (("after", now - timedelta(hours=24)), ("before", now)):
        raw = params.get(name)
        parsed = parse_datetime(raw) if raw else default
        if parsed is None:
            raise ValidationError({name: ["An ISO 8601 date-time."]})
        values[name] = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
    after, before = values["after"], values["before"]
    if after >= before:
        raise ValidationError({"after": ["Must be before 'before'."]})
    if before - after > _GRANULARITIES[granularity]:
        raise ValidationError({"after": [f"The range is too long for granularity {granularity}."]})
    if granularity == "minute" and after < now - rollups.RAW_WINDOW:
        raise ValidationError({"granularity": ["Minutes are kept for the last 48 hours; use hour or day."]})
    return after, before, granularity


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


_RANGE_PARAMETERS = [
    OpenApiParameter("after", OpenApiTypes.DATETIME, description="Default: 24 hours ago."),
    OpenApiParameter("before", OpenApiTypes.DATETIME, description="Default: now."),
    OpenApiParameter("granularity", OpenApiTypes.STR, enum=list(_GRANULARITIES), description="Default hour."),
]


class VolumeSeriesView(APIView):
    """``GET /v1/metrics/volume``: events per source and bucket."""

    query_params = ("after", "before", "granularity", "source_id")

    @extend_schema(
        summary="Events received over time, per source",
        parameters=[*_RANGE_PARAMETERS, OpenApiParameter("source_id", OpenApiTypes.STR)],
        responses={200: VolumeSeriesSerializer},
    )
    def get(self, request):
        organization = request._request.organization
        after, before, granularity = _range(request, self)
        series = rollups.volume_series(
            organization=organization,
            after=after,
            before=before,
            granularity=granularity,
            source_id=request.query_params.get("source_id") or None,
        )
        names = dict(
            Source.objects.filter(organization=organization, pk__in={s for _, s in series}).values_list("pk", "name")
        )
        rows = [
            {"bucket": _iso(bucket), "source_id": source_id, "source_name": names.get(source_id), "event_count": count}
            for (bucket, source_id), count in sorted(series.items(), key=lambda item: (item[0][0], item[0][1] or ""))
        ]
        return Response({"series": rows, "granularity": granularity})


class DeliverySeriesView(APIView):
    """``GET /v1/metrics/deliveries``: attempts per destination and bucket."""

    query_params = ("after", "before", "granularity", "destination_id")

    @extend_schema(
        summary="Delivery attempts over time, per destination",
        parameters=[*_RANGE_PARAMETERS, OpenApiParameter("destination_id", OpenApiTypes.STR)],
        responses={200: DeliverySeriesSerializer},
    )
    def get(self, request):
        organization = request._request.organization
        after, before, granularity = _range(request, self)
        series = rollups.delivery_series(
            organization=organization,
            after=after,
            before=before,
            granularity=granularity,
            destination_id=request.query_params.get("destination_id") or None,
        )
        names = dict(
            Destination.all_objects.filter(organization=organization, pk__in={d for _, d in series}).values_list(
                "pk", "name"
            )
        )
        rows = [
            {
                "bucket": _iso(bucket),
                "destination_id": destination_id,
                "destination_name": names.get(destination_id),
                "delivery_count": values["attempt_count"],
                "success_count": values["success_count"],
                "failure_count": values["failure_count"],
                "dead_letter_count": values["dead_letter_count"],
            }
            for (bucket, destination_id), values in sorted(series.items())
        ]
        return Response({"series": rows, "granularity": granularity})


class LatencySeriesView(APIView):
    """``GET /v1/metrics/latency``: p50/p95/p99 per bucket (one destination, or all)."""

    query_params = ("after", "before", "granularity", "destination_id")

    @extend_schema(
        summary="Delivery latency percentiles over time",
        parameters=[*_RANGE_PARAMETERS, OpenApiParameter("destination_id", OpenApiTypes.STR)],
        responses={200: LatencySeriesSerializer},
    )
    def get(self, request):
        organization = request._request.organization
        after, before, granularity = _range(request, self)
        destination_id = request.query_params.get("destination_id") or None
        series = rollups.delivery_totals(
            organization=organization,
            after=after,
            before=before,
            granularity=granularity,
            by=("bucket",),
            destination_ids=[destination_id] if destination_id else None,
        )
        rows = []
        for (bucket,), values in sorted(series.items()):
            histogram = values["latency_histogram"]
            row = {"bucket": _iso(bucket), "count": sum(histogram)}
            if destination_id:
                row["destination_id"] = destination_id
            for label, fraction in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
                row[label] = rollups.histogram_quantile(histogram, fraction)
            rows.append(row)
        return Response({"series": rows, "granularity": granularity})


class MetricsOverviewView(APIView):
    """``GET /v1/metrics/overview``: today's numbers, with the hosted product's field names too."""

    @extend_schema(summary="Today's delivery metrics", responses={200: OverviewSerializer})
    def get(self, request):
        return Response(selectors.overview(organization=request._request.organization))
