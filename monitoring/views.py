"""The monitoring API (spec §8). Views parse input, call one service or selector, render."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from hookstream.api.exceptions import Conflict
from hookstream.api.serializers import ErrorSerializer, SuccessSerializer
from hookstream.api.viewsets import OrganizationScopedMixin, OrganizationScopedViewSet
from monitoring import alerts, selectors, services
from monitoring.models import AlertRule, Issue, NotificationChannel
from monitoring.serializers import (
    AlertRuleSerializer,
    IssueDetailSerializer,
    IssueRetryResultSerializer,
    IssueSerializer,
    IssueSummarySerializer,
    IssueUpdateSerializer,
    NotificationChannelSerializer,
    NotificationSerializer,
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
