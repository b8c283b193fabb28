"""The Destinations API (spec §3): CRUD, templates, circuit status and reset."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from deliveries import circuit as delivery_circuit
from deliveries import selectors as delivery_selectors
from deliveries import services as delivery_services
from destinations import selectors, services
from destinations.models import Destination
from destinations.serializers import (
    CircuitSerializer,
    DestinationSerializer,
    DestinationWriteSerializer,
    TemplateListSerializer,
)
from hookstream.api.serializers import ErrorSerializer, SuccessSerializer
from hookstream.api.viewsets import OrganizationScopedViewSet
from templates_catalog.catalog import all_templates


@extend_schema_view(
    list=extend_schema(summary="List destinations", description="Newest first, cursor-paginated."),
    retrieve=extend_schema(summary="Retrieve a destination"),
    create=extend_schema(
        summary="Create a destination",
        request=DestinationWriteSerializer,
        responses={201: DestinationSerializer, 409: ErrorSerializer},
    ),
    partial_update=extend_schema(
        summary="Update a destination",
        description="All fields optional. provider_config and signing_config are merged key by key "
        "(null removes a key); a masked secret sent back keeps the stored secret.",
        request=DestinationWriteSerializer,
        responses={200: DestinationSerializer, 409: ErrorSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a destination",
        description="Stops every pending delivery to it.",
        responses={200: SuccessSerializer},
    ),
)
class DestinationViewSet(OrganizationScopedViewSet):
    queryset = Destination.objects.all()
    serializer_class = DestinationSerializer
    pagination_key = "destinations"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Destination.objects.none()
        return delivery_selectors.destinations_with_delivery_counts(organization=self.get_organization())

    def create(self, request, *args, **kwargs):
        payload = DestinationWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        destination = services.destination_create(organization=self.get_organization(), data=payload.validated_data)
        return Response(self._render(destination), status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        destination = self.get_object()
        payload = DestinationWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        destination = delivery_services.destination_update(destination=destination, data=payload.validated_data)
        return Response(self._render(destination))

    def destroy(self, request, *args, **kwargs):
        delivery_services.destination_delete(destination=self.get_object())
        return Response({"success": True})

    @extend_schema(summary="List destination templates", responses={200: TemplateListSerializer})
    @action(detail=False, methods=["get"], pagination_class=None)
    def templates(self, request):
        return Response({"templates": [template.as_dict() for template in all_templates()]})

    @extend_schema(summary="Circuit breaker status", responses={200: CircuitSerializer})
    @action(detail=True, methods=["get"])
    def circuit(self, request, pk=None):
        circuit = selectors.destination_circuit(destination=self.get_object())
        return Response(CircuitSerializer(circuit).data)

    @extend_schema(
        summary="Reset the circuit breaker",
        description="Closes the circuit; deliveries it held resume, oldest first.",
        request=None,
        responses={200: CircuitSerializer},
    )
    @action(detail=True, methods=["post"], url_path="circuit/reset", url_name="circuit-reset")
    def circuit_reset(self, request, pk=None):
        circuit = delivery_circuit.circuit_reset(destination=self.get_object())
        return Response(CircuitSerializer(circuit).data)

    def _render(self, destination) -> dict:
        # Re-read through the selector for the real delivery_count.
        fresh = delivery_selectors.destination_with_delivery_count(
            organization=self.get_organization(), destination_id=destination.pk
        )
        return DestinationSerializer(fresh).data
