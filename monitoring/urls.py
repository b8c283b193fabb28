"""Monitoring routes, included at the root by ``hookstream.urls``: the probes and
``/metrics`` at the top level, the API under ``/v1/``. A trailing slash is optional."""

from django.urls import include, path, re_path

from monitoring import health, prometheus, views

ID = r"(?P<pk>[A-Za-z0-9_]+)"

issue_list = views.IssueViewSet.as_view({"get": "list"})
issue_summary = views.IssueViewSet.as_view({"get": "summary"})
issue_detail = views.IssueViewSet.as_view({"get": "retrieve", "patch": "partial_update"})
issue_retry = views.IssueViewSet.as_view({"post": "retry"})

channel_list = views.NotificationChannelViewSet.as_view({"get": "list", "post": "create"})
channel_detail = views.NotificationChannelViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)
channel_test = views.NotificationChannelViewSet.as_view({"post": "test"})
rule_list = views.AlertRuleViewSet.as_view({"get": "list", "post": "create"})
rule_detail = views.AlertRuleViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})

urlpatterns = [
    # The console's Issues pages (/issues/…), under the console's layout and session.
    path("", include("monitoring.console_urls")),
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^readyz/?$", health.readyz, name="readyz"),
    path("metrics", prometheus.prometheus_view, name="metrics-prometheus"),
    path("v1/metrics/overview", views.MetricsOverviewView.as_view(), name="metrics-overview"),
    re_path(r"^v1/metrics/volume/?$", views.VolumeSeriesView.as_view(), name="metrics-volume"),
    re_path(r"^v1/metrics/deliveries/?$", views.DeliverySeriesView.as_view(), name="metrics-deliveries"),
    re_path(r"^v1/metrics/latency/?$", views.LatencySeriesView.as_view(), name="metrics-latency"),
    re_path(r"^v1/issues/?$", issue_list, name="issue-list"),
    re_path(r"^v1/issues/summary/?$", issue_summary, name="issue-summary"),
    re_path(rf"^v1/issues/{ID}/?$", issue_detail, name="issue-detail"),
    re_path(rf"^v1/issues/{ID}/retry/?$", issue_retry, name="issue-retry"),
    re_path(r"^v1/notification-channels/?$", channel_list, name="notification-channel-list"),
    re_path(rf"^v1/notification-channels/{ID}/?$", channel_detail, name="notification-channel-detail"),
    re_path(rf"^v1/notification-channels/{ID}/test/?$", channel_test, name="notification-channel-test"),
    re_path(r"^v1/alert-rules/?$", rule_list, name="alert-rule-list"),
    re_path(rf"^v1/alert-rules/{ID}/?$", rule_detail, name="alert-rule-detail"),
]
