"""Dashboard and destination pages (names start with ``destination`` so the nav highlights them)."""

from django.urls import path

from console.views import dashboard as views_dashboard
from console.views import destinations as views

urlpatterns = [
    path("", views_dashboard.DashboardView.as_view(), name="dashboard"),
    path("destinations/", views.DestinationListView.as_view(), name="destination-list"),
    path("destinations/new/", views.DestinationCreateView.as_view(), name="destination-create"),
    path("destinations/templates/", views.DestinationTemplateListView.as_view(), name="destination-template-list"),
    path(
        "destinations/templates/<str:template_id>/",
        views.DestinationCreateFromTemplateView.as_view(),
        name="destination-create-from-template",
    ),
    path("destinations/<str:pk>/", views.DestinationDetailView.as_view(), name="destination-detail"),
    path("destinations/<str:pk>/live/", views.DestinationLiveView.as_view(), name="destination-live"),
    path("destinations/<str:pk>/edit/", views.DestinationEditView.as_view(), name="destination-edit"),
    path("destinations/<str:pk>/delete/", views.DestinationDeleteView.as_view(), name="destination-delete"),
    path("destinations/<str:pk>/test/", views.TestSendView.as_view(), name="destination-test"),
    path("destinations/<str:pk>/status/", views.StatusChangeView.as_view(), name="destination-status"),
    path("destinations/<str:pk>/circuit/reset/", views.CircuitResetView.as_view(), name="destination-circuit-reset"),
    path(
        "destinations/<str:pk>/dead-letters/retry/",
        views.DeadLetterRetryAllView.as_view(),
        name="destination-dead-letters-retry",
    ),
    path(
        "destinations/<str:pk>/dead-letters/<str:dead_letter_id>/retry/",
        views.DeadLetterRetryView.as_view(),
        name="destination-dead-letter-retry",
    ),
]
