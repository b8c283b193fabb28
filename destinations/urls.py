"""``/v1/destinations…``. Every route is anchored at both ends, so the deliveries app's
``destinations/<id>/test`` and ``destinations/<id>/dead-letters`` (included after these)
are not swallowed; ``templates`` is routed before the detail route."""

from destinations.views import DestinationViewSet
from hookstream.api.viewsets import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("destinations", DestinationViewSet, basename="destination")

urlpatterns = router.urls
