"""Console pages of the monitoring app, at ``/issues/`` (namespace ``monitoring-console``)."""

from django.urls import path

from monitoring import console_views

app_name = "monitoring-console"

urlpatterns = [
    path("issues/", console_views.IssueListView.as_view(), name="issue-list"),
    path("issues/<str:pk>/", console_views.IssueDetailView.as_view(), name="issue-detail"),
    path("issues/<str:pk>/action/", console_views.IssueActionView.as_view(), name="issue-action"),
]
