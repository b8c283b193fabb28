from django.contrib import admin

from hookstream.models import APIKey, Membership, Organization, StreamFrame
from hookstream.services import api_key_revoke


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "id", "created_at"]
    search_fields = ["name", "slug", "id"]
    readonly_fields = ["id"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "organization__slug"]
    list_select_related = ["user", "organization"]


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are created with ``create_api_key`` or the API; the hash is never shown."""

    list_display = ["name", "organization", "key_prefix", "created_at", "last_used_at", "request_count", "revoked_at"]
    list_filter = ["organization", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_prefix", "id", "organization__slug"]
    list_select_related = ["organization"]
    exclude = ["key_hash"]
    readonly_fields = ["id", "organization", "key_prefix", "created_by", "created_at", "last_used_at", "request_count"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(StreamFrame)
class StreamFrameAdmin(admin.ModelAdmin):
    """The live stream's frames in transit (embedded setup only: without Redis, stream processes
    read them from this table). Read-only: a frame is written by the process that made it."""

    list_display = ["id", "created_at"]
    readonly_fields = ["id", "created_at", "message"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
