from django.contrib import admin

from deliveries.models import DeadLetter, Delivery, DeliveryAttempt, DestinationDeliveryCount, ReplayJob
from deliveries.services import RetryRefused, delivery_retry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "destination",
        "event",
        "status",
        "trigger_type",
        "attempt_count",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "trigger_type", "destination__type", "organization"]
    search_fields = ["id", "event__id", "destination__slug", "destination__id"]
    date_hierarchy = "created_at"
    list_select_related = ["organization", "destination", "event"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry selected deliveries now")
    def retry(self, request, queryset):
        _retry(self, request, queryset)


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "destination",
        "delivery",
        "attempt_number",
        "status",
        "response_status",
        "duration_ms",
        "is_dlq",
        "created_at",
    ]
    list_filter = ["status", "is_dlq", "trigger_type", "organization"]
    search_fields = ["id", "delivery__id", "event__id", "destination__slug"]
    date_hierarchy = "created_at"
    list_select_related = ["destination", "delivery"]


def _retry(modeladmin, request, rows):
    retried = refused = 0
    for delivery in rows:
        try:
            delivery_retry(delivery=delivery)
            retried += 1
        except RetryRefused:
            refused += 1
    modeladmin.message_user(request, f"Retried {retried}; {refused} could not be retried now.")


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["id", "destination", "event", "reason", "created_at"]
    list_filter = ["reason", "organization", "destination"]
    search_fields = ["id", "event__id", "delivery__id", "destination__slug"]
    date_hierarchy = "created_at"
    list_select_related = ["destination", "event"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry selected dead letters")
    def retry(self, request, queryset):
        deliveries = [row.delivery for row in queryset.select_related("delivery", "delivery__destination")]
        _retry(self, request, deliveries)


@admin.register(ReplayJob)
class ReplayJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "destination", "status", "total", "processed", "started_at", "completed_at"]
    list_filter = ["kind", "status", "organization"]
    search_fields = ["id", "destination__slug"]
    list_select_related = ["destination"]


@admin.register(DestinationDeliveryCount)
class DestinationDeliveryCountAdmin(ReadOnlyAdmin):
    """Rows the database triggers append; a destination's count is the sum of its rows."""

    list_display = ["destination_id", "n"]
    search_fields = ["destination_id"]

    def has_delete_permission(self, request, obj=None):
        return False
