"""``/v1/sources…``, ``/v1/ingest/<id>``, ``/v1/connections…``, ``/v1/topics…`` and
``/v1/events…``. Every route is anchored at both ends, so ``events/<id>/retry`` of the
deliveries app (included after these) is not swallowed by the event detail route."""

from django.urls import re_path

from hookstream.api.viewsets import OptionalSlashRouter
from intake.ingest import IngestView
from intake.views import ConnectionViewSet, EventViewSet, SourceViewSet, TopicViewSet

router = OptionalSlashRouter()
router.register("sources", SourceViewSet, basename="source")
router.register("connections", ConnectionViewSet, basename="connection")
router.register("topics", TopicViewSet, basename="topic")
router.register("events", EventViewSet, basename="event")

urlpatterns = [
    re_path(r"^ingest/(?P<source_id>[A-Za-z0-9_-]+)/?$", IngestView.as_view(), name="ingest"),
    *router.urls,
]
