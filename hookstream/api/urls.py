from hookstream.api.views import APIKeyViewSet
from hookstream.api.viewsets import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("auth/api-keys", APIKeyViewSet, basename="api-key")

urlpatterns = router.urls
