"""Events, sources, connections, topics and API keys. Every name starts with its section
(``event``, ``source``, ``connection``, ``topic``, ``apikey``) so the navigation marks it."""

from django.urls import path

from console.views import apikeys as views_apikeys
from console.views import events as views_events
from console.views import intake as views_intake

urlpatterns = [
    path("events/", views_events.EventListView.as_view(), name="event-list"),
    path("events/<slug:pk>/", views_events.EventDetailView.as_view(), name="event-detail"),
    path("events/<slug:pk>/retry/", views_events.EventRetryView.as_view(), name="event-retry"),
    path("sources/", views_intake.SourceListView.as_view(), name="source-list"),
    path("sources/new/", views_intake.SourceCreateView.as_view(), name="source-create"),
    path("sources/<slug:pk>/", views_intake.SourceDetailView.as_view(), name="source-detail"),
    path("sources/<slug:pk>/edit/", views_intake.SourceEditView.as_view(), name="source-edit"),
    path("sources/<slug:pk>/delete/", views_intake.SourceDeleteView.as_view(), name="source-delete"),
    path("connections/", views_intake.ConnectionListView.as_view(), name="connection-list"),
    path("connections/new/", views_intake.ConnectionCreateView.as_view(), name="connection-create"),
    path("connections/<slug:pk>/edit/", views_intake.ConnectionEditView.as_view(), name="connection-edit"),
    path("connections/<slug:pk>/delete/", views_intake.ConnectionDeleteView.as_view(), name="connection-delete"),
    path("topics/", views_intake.TopicListView.as_view(), name="topic-list"),
    path("topics/new/", views_intake.TopicCreateView.as_view(), name="topic-create"),
    path("topics/<slug:pk>/", views_intake.TopicDetailView.as_view(), name="topic-detail"),
    path("topics/<slug:pk>/edit/", views_intake.TopicEditView.as_view(), name="topic-edit"),
    path("topics/<slug:pk>/delete/", views_intake.TopicDeleteView.as_view(), name="topic-delete"),
    path(
        "topics/<slug:pk>/subscriptions/",
        views_intake.SubscriptionCreateView.as_view(),
        name="topic-subscription-create",
    ),
    path(
        "topics/<slug:pk>/subscriptions/<slug:subscription_id>/delete/",
        views_intake.SubscriptionDeleteView.as_view(),
        name="topic-subscription-delete",
    ),
    path("api-keys/", views_apikeys.APIKeyListView.as_view(), name="apikey-list"),
    path("api-keys/new/", views_apikeys.APIKeyCreateView.as_view(), name="apikey-create"),
    path("api-keys/<slug:pk>/revoke/", views_apikeys.APIKeyRevokeView.as_view(), name="apikey-revoke"),
]
