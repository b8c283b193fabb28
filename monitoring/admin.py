"""Admin: issues (acknowledge, resolve, retry), alert rules, channels and their sends."""

from django.contrib import admin

from monitoring import services
from monitoring.models import AlertRule, Issue, IssueStatus, Notification, NotificationChannel


@admin.action(description="Acknowledge")
def acknowledge(modeladmin, request, queryset):
    for issue in queryset:
        services.issue_update(issue=issue, status=IssueStatus.ACKNOWLEDGED)
    modeladmin.message_user(request, f"Acknowledged {queryset.count()} issue(s).")


@admin.action(description="Resolve")
def resolve(modeladmin, request, queryset):
    for issue in queryset:
        services.issue_update(issue=issue, status=IssueStatus.RESOLVED)
    modeladmin.message_user(request, f"Resolved {queryset.count()} issue(s).")


@admin.action(description="Retry the failed deliveries")
def retry(modeladmin, request, queryset):
    total = sum(len(services.issue_retry(issue=issue)["retried"]) for issue in queryset)
    modeladmin.message_user(request, f"Retried {total} deliveries.")


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "destination", "error_type", "status", "occurrence_count", "last_seen_at")
    list_filter = ("status", "error_type")
    search_fields = ("id", "destination__name", "message")
    readonly_fields = (
        "organization",
        "destination",
        "error_type",
        "message",
        "occurrence_count",
        "first_seen_at",
        "last_seen_at",
        "recent_attempt_ids",
        "acknowledged_at",
        "resolved_at",
        "created_at",
    )
    fields = (*readonly_fields, "status", "snoozed_until")
    actions = [acknowledge, resolve, retry]
    ordering = ("-last_seen_at",)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "rule_type", "enabled", "cooldown_minutes", "last_triggered_at")
    list_filter = ("rule_type", "enabled")
    search_fields = ("id", "name")
    raw_id_fields = ("source", "destination")
    filter_horizontal = ("channels",)
    readonly_fields = ("last_triggered_at", "last_evaluated_at")


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "channel_type", "created_at")
    list_filter = ("channel_type",)
    search_fields = ("id", "name")
    # The config holds the encrypted webhook secret: shown, not edited here (use the API).
    readonly_fields = ("config",)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "rule", "status", "attempt_count", "created_at", "sent_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Notification._meta.fields]
