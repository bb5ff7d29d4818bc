from django.contrib import admin

from .models import Alert, BillingEvent, WorkerHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BillingEvent)
class BillingEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "name", "dimensions"]
    list_filter = ["name"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "route", "title", "slack_sent_at", "email_sent_at", "attempts"]
    list_filter = ["route"]
    search_fields = ["title"]
    date_hierarchy = "created_at"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "beat_at", "host", "pid"]
