from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.utils.html import format_html
from django_q import admin as q_admin
from django_q.models import Failure, Success
from djstripe import models as djstripe_models

from .models import Alert, BillingEvent, Monitor, StripeMirror, WorkerHeartbeat
from .monitoring import MONITORS, monitor_check
from .stripe_mirror import stripe_mirror_retry

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


class OperateActionsMixin:
    """Admin actions marked `permissions=["operate"]` need the model's change permission held
    by the user (operators), whatever the admin's own change rules for its forms: auditors
    (view only) see the records and never act."""

    def has_operate_permission(self, request) -> bool:
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")


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
class MonitorAdmin(OperateActionsMixin, ReadOnlyAdmin):
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

    @admin.action(description="Check the selected monitors now", permissions=["operate"])
    def check_now(self, request, queryset) -> None:
        for monitor in queryset:
            if monitor.name in MONITORS:
                result = monitor_check(name=monitor.name)
                self.message_user(request, f"{result.name}: {result.summary}")


MIRROR_COLOURS = {"pending": "#667085", "done": "#1b7f3b", "failed": "#b42318"}


@admin.register(StripeMirror)
class StripeMirrorAdmin(OperateActionsMixin, ReadOnlyAdmin):
    """dj-stripe's copies of Stripe objects, per event: never in the way of a delivery."""

    list_display = ["created_at", "event_type", "event_id", "state_badge", "attempts", "error"]
    list_filter = ["state", "event_type"]
    search_fields = ["=event_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [
        "event_id",
        "event_type",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "updated_at",
    ]
    actions = ["retry_now"]

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: StripeMirror) -> str:
        return format_html(
            '<span style="color:#fff;background:{};padding:2px 8px;border-radius:10px;'
            'font-weight:600">{}</span>',
            MIRROR_COLOURS.get(obj.state, "#667085"),
            obj.get_state_display(),
        )

    @admin.display(description="last error")
    def error(self, obj: StripeMirror) -> str:
        return obj.last_error[:120]

    @admin.action(description="Mirror the selected events again now", permissions=["operate"])
    def retry_now(self, request, queryset) -> None:
        queued = sum(stripe_mirror_retry(event_id=mirror.event_id) for mirror in queryset)
        self.message_user(request, f"{queued} event(s) queued for dj-stripe's copy.")


# dj-stripe's own Event and WebhookEndpoint admins offer "re-sync" actions through a URL that
# checks no permission (and answers 500 when Stripe does); these read-only pages replace them.
admin.site.unregister(djstripe_models.Event)
admin.site.unregister(djstripe_models.WebhookEndpoint)


@admin.register(djstripe_models.Event)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "created", "livemode"]
    list_filter = ["type", "livemode"]
    search_fields = ["=id", "type"]
    date_hierarchy = "created"
    show_full_result_count = False
    fields = ["id", "type", "created", "livemode", "api_version", "request_id", "data"]
    readonly_fields = fields


@admin.register(djstripe_models.WebhookEndpoint)
class StripeWebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "url", "status", "api_version", "livemode"]
    fields = ["id", "url", "status", "api_version", "enabled_events", "livemode", "djstripe_uuid"]
    readonly_fields = fields  # the signing secret is never shown


class _QueueActionsNeedChange:
    """django-q2's task pages: "resubmit" re-runs a task, so it needs the change permission."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        codename = get_permission_codename("change", self.opts)
        if request.user.has_perm(f"{self.opts.app_label}.{codename}"):
            return actions
        return {name: action for name, action in actions.items() if name == "delete_selected"}


for _model, _admin in ((Failure, q_admin.FailAdmin), (Success, q_admin.TaskAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, type(_admin.__name__, (_QueueActionsNeedChange, _admin), {}))
