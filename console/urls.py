"""The console (session-cookie web UI). Every URL name starts with its section (``destination``,
``event``, ``source``, ``connection``, ``topic``, ``apikey``) so the navigation marks it."""

from django.urls import path

from console.views import apikeys, auth, dashboard, destinations, events, intake, routes

app_name = "console"

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("organization/switch/", auth.OrganizationSwitchView.as_view(), name="organization-switch"),
    path("", dashboard.DashboardView.as_view(), name="dashboard"),
    # Destinations, with templates, circuit and dead letters.
    path("destinations/", destinations.DestinationListView.as_view(), name="destination-list"),
    path("destinations/new/", destinations.DestinationCreateView.as_view(), name="destination-create"),
    path(
        "destinations/templates/",
        destinations.DestinationTemplateListView.as_view(),
        name="destination-template-list",
    ),
    path(
        "destinations/templates/<str:template_id>/",
        destinations.DestinationCreateFromTemplateView.as_view(),
        name="destination-create-from-template",
    ),
    path("destinations/<str:pk>/", destinations.DestinationDetailView.as_view(), name="destination-detail"),
    path("destinations/<str:pk>/live/", destinations.DestinationLiveView.as_view(), name="destination-live"),
    path("destinations/<str:pk>/edit/", destinations.DestinationEditView.as_view(), name="destination-edit"),
    path("destinations/<str:pk>/delete/", destinations.DestinationDeleteView.as_view(), name="destination-delete"),
    path("destinations/<str:pk>/test/", destinations.TestSendView.as_view(), name="destination-test"),
    path("destinations/<str:pk>/status/", destinations.StatusChangeView.as_view(), name="destination-status"),
    path(
        "destinations/<str:pk>/circuit/reset/",
        destinations.CircuitResetView.as_view(),
        name="destination-circuit-reset",
    ),
    path(
        "destinations/<str:pk>/dead-letters/retry/",
        destinations.DeadLetterRetryAllView.as_view(),
        name="destination-dead-letters-retry",
    ),
    path(
        "destinations/<str:pk>/dead-letters/retry/confirm/",
        destinations.DeadLetterRetryAllConfirmView.as_view(),
        name="destination-dead-letters-retry-confirm",
    ),
    path(
        "destinations/<str:pk>/dead-letters/<str:dead_letter_id>/retry/",
        destinations.DeadLetterRetryView.as_view(),
        name="destination-dead-letter-retry",
    ),
    # Events.
    path("events/", events.EventListView.as_view(), name="event-list"),
    path("events/<slug:pk>/", events.EventDetailView.as_view(), name="event-detail"),
    path("events/<slug:pk>/retry/", events.EventRetryView.as_view(), name="event-retry"),
    # Sources, connections, topics and their subscriptions.
    path("sources/", intake.SourceListView.as_view(), name="source-list"),
    path("sources/new/", intake.SourceCreateView.as_view(), name="source-create"),
    path("sources/<slug:pk>/", intake.SourceDetailView.as_view(), name="source-detail"),
    path("sources/<slug:pk>/edit/", intake.SourceEditView.as_view(), name="source-edit"),
    path("sources/<slug:pk>/delete/", intake.SourceDeleteView.as_view(), name="source-delete"),
    path("connections/", intake.ConnectionListView.as_view(), name="connection-list"),
    path("connections/new/", intake.ConnectionCreateView.as_view(), name="connection-create"),
    path("connections/<slug:pk>/edit/", intake.ConnectionEditView.as_view(), name="connection-edit"),
    path("connections/<slug:pk>/delete/", intake.ConnectionDeleteView.as_view(), name="connection-delete"),
    path("topics/", intake.TopicListView.as_view(), name="topic-list"),
    path("topics/new/", intake.TopicCreateView.as_view(), name="topic-create"),
    path("topics/<slug:pk>/", intake.TopicDetailView.as_view(), name="topic-detail"),
    path("topics/<slug:pk>/edit/", intake.TopicEditView.as_view(), name="topic-edit"),
    path("topics/<slug:pk>/delete/", intake.TopicDeleteView.as_view(), name="topic-delete"),
    path(
        "topics/<slug:pk>/subscriptions/",
        intake.SubscriptionCreateView.as_view(),
        name="topic-subscription-create",
    ),
    path(
        "topics/<slug:pk>/subscriptions/<slug:subscription_id>/delete/",
        intake.SubscriptionDeleteView.as_view(),
        name="topic-subscription-delete",
    ),
    # Trying a route's filter rules and transform on an event.
    path("route-test/", routes.RouteTestView.as_view(), name="route-test"),
    path("route-test/events/", routes.RouteTestEventsView.as_view(), name="route-test-events"),
    # API keys.
    path("api-keys/", apikeys.APIKeyListView.as_view(), name="apikey-list"),
    path("api-keys/new/", apikeys.APIKeyCreateView.as_view(), name="apikey-create"),
    path("api-keys/<slug:pk>/revoke/", apikeys.APIKeyRevokeView.as_view(), name="apikey-revoke"),
]
