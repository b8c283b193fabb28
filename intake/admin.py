from django.contrib import admin

from deliveries.services import events_replay
from intake.models import Connection, DedupKey, Event, Source, Subscription, Topic


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    """The verification secret is never shown; change it through the API."""

    list_display = ["name", "slug", "organization", "verification_type", "status", "event_count", "last_event_at"]
    list_filter = ["status", "verification_type", "dedup_enabled", "organization"]
    search_fields = ["name", "slug", "id", "organization__slug"]
    list_select_related = ["organization"]
    exclude = ["verification_secret"]
    readonly_fields = ["id", "organization", "secret_set", "event_count", "last_event_at", "created_at", "updated_at"]

    @admin.display(description="Verification secret", boolean=True)
    def secret_set(self, obj):
        return bool(obj.verification_secret)


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "organization", "source", "destination", "enabled", "created_at"]
    list_filter = ["enabled", "organization"]
    search_fields = ["id", "name", "source__slug", "destination__slug"]
    list_select_related = ["organization", "source", "destination"]
    raw_id_fields = ["source", "destination"]
    readonly_fields = ["id", "organization"]


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "organization", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "slug", "id"]
    readonly_fields = ["id", "organization"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "topic", "destination", "organization", "created_at"]
    list_filter = ["organization"]
    search_fields = ["id", "topic__slug", "destination__slug"]
    list_select_related = ["organization", "topic", "destination"]
    raw_id_fields = ["topic", "destination"]
    readonly_fields = ["id", "organization"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "source", "topic", "content_type", "body_size", "received_at"]
    list_filter = ["organization", "source", "content_type"]
    search_fields = ["id", "idempotency_key"]
    date_hierarchy = "received_at"
    list_select_related = ["organization", "source", "topic"]
    exclude = ["body"]
    readonly_fields = [f.name for f in Event._meta.fields if f.name != "body"]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay selected events to the destinations they were delivered to")
    def replay(self, request, queryset):
        """Filter the list by date (the date hierarchy) to pick a time range, select, replay."""
        created = events_replay(events=queryset.order_by("received_at", "id"))
        self.message_user(request, f"Queued {len(created)} replay deliveries.")


@admin.register(DedupKey)
class DedupKeyAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "key", "expires_at"]
    search_fields = ["source__slug", "key"]
    list_select_related = ["source"]
