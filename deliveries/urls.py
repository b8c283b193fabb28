"""Delivery routes. Included after the destinations and intake routes; every path here is
longer than theirs (``…/<id>/retry``, ``…/<id>/test``), so nothing is shadowed. A trailing
slash is optional everywhere (a redirected POST would lose its body)."""

from django.urls import re_path

from deliveries import views

ID = r"(?P<pk>[A-Za-z0-9_]+)"

attempt_list = views.DeliveryAttemptViewSet.as_view({"get": "list"})
attempt_detail = views.DeliveryAttemptViewSet.as_view({"get": "retrieve"})
attempt_retry = views.DeliveryAttemptViewSet.as_view({"post": "retry"})

urlpatterns = [
    re_path(r"^delivery-attempts/?$", attempt_list, name="delivery-attempt-list"),
    re_path(rf"^delivery-attempts/{ID}/?$", attempt_detail, name="delivery-attempt-detail"),
    re_path(rf"^delivery-attempts/{ID}/retry/?$", attempt_retry, name="delivery-attempt-retry"),
    re_path(rf"^events/{ID}/retry/?$", views.EventRetryView.as_view(), name="event-retry"),
    re_path(r"^replay/?$", views.ReplayCreateView.as_view(), name="replay-create"),
    re_path(rf"^replay/{ID}/?$", views.ReplayDetailView.as_view(), name="replay-detail"),
    re_path(rf"^destinations/{ID}/dead-letters/?$", views.DeadLetterListView.as_view(), name="dead-letter-list"),
    re_path(
        rf"^destinations/{ID}/dead-letters/retry/?$", views.DeadLetterRetryView.as_view(), name="dead-letter-retry"
    ),
    re_path(rf"^destinations/{ID}/test/?$", views.DestinationTestView.as_view(), name="destination-test"),
]
