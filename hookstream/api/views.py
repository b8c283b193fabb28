"""API keys: ``/v1/auth/api-keys``. Managed with a signed-in session only (spec §1)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from hookstream import services
from hookstream.api.permissions import HasOrganization, SessionOnly
from hookstream.api.serializers import (
    APIKeyCreatedSerializer,
    APIKeyCreateSerializer,
    APIKeySerializer,
    SuccessSerializer,
)
from hookstream.api.viewsets import OrganizationScopedMixin
from hookstream.models import APIKey

SESSION_ONLY = [{"cookieAuth": []}]


@extend_schema_view(
    list=extend_schema(summary="List API keys", auth=SESSION_ONLY),
    create=extend_schema(
        summary="Create an API key (the key is shown once)",
        request=APIKeyCreateSerializer,
        responses={201: APIKeyCreatedSerializer},
        auth=SESSION_ONLY,
    ),
    destroy=extend_schema(summary="Revoke an API key", responses={200: SuccessSerializer}, auth=SESSION_ONLY),
)
class APIKeyViewSet(
    OrganizationScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """An API key cannot list, mint or revoke keys: a leaked key must not be able to
    perpetuate itself. Revoked keys stay listed (with ``revoked: true``)."""

    queryset = APIKey.objects.all()
    serializer_class = APIKeySerializer
    permission_classes = [SessionOnly, HasOrganization]
    pagination_key = "api_keys"
    http_method_names = ["get", "post", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        payload = APIKeyCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        key, raw = services.api_key_create(
            organization=self.get_organization(), name=payload.validated_data["name"], created_by=request.user
        )
        key.key = raw
        return Response(APIKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.api_key_revoke(key=self.get_object())
        return Response({"success": True})
