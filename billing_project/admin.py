from django.contrib import admin
from django.utils.html import format_html
from djstripe import models as djstripe_models

from .models import Alert, BillingEvent, Monitor, WorkerHeartbeat
from .monitoring import MONITORS, monitor_check

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


@admin.register(Monitor)
class MonitorAdmin(ReadOnlyAdmin):
    list_display = ["name", "status", "summary", "checked_at", "changed_at"]
    readonly_fields = ["name", "ok", "summary", "detail", "checked_at", "changed_at"]
    actions = ["check_now"]

    @admin.display(description="status", ordering="ok")
    def status(self, obj: Monitor) -> str:
        label, colour = {True: ("OK", "#1b7f3b"), False: ("FAILING", "#b42318")}.get(
            obj.ok, ("not checked", "#667085")
        )
        return format_html(
            '<span style="color:#fff;background:{};padding:2px 8px;border-radius:10px;'
            'font-weight:600">{}</span>',
            colour,
            label,
        )

    @admin.action(description="Check the selected monitors now")
    def check_now(self, request, queryset) -> None:
        for monitor in queryset:
            if monitor.name in MONITORS:
                result = monitor_check(name=monitor.name)
                self.message_user(request, f"{result.name}: {result.summary}")

    def has_check_now_permission(self, request) -> bool:
        return request.user.has_perm("core.change_monitor")
