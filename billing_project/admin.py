from django.contrib import admin
from djstripe import models as djstripe_models

from .models import Alert, BillingEvent, WorkerHeartbeat

admin.site.site_header = "Billing operations"
admin.site.site_title = "Billing operations"
admin.site.index_title = "Billing operations"

# dj-stripe registers an admin page for every Stripe object; several break on the current API
# shape (its Invoice changelist and search answer 500). Operators see only the webhook records.
DJSTRIPE_ADMIN_KEPT = {
    djstripe_models.Event,
    djstripe_models.WebhookEndpoint,
    djstripe_models.WebhookEventTrigger,
}
for model in list(admin.site._registry):
    if model._meta.app_label == "djstripe" and model not in DJSTRIPE_ADMIN_KEPT:
        admin.site.unregister(model)


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
