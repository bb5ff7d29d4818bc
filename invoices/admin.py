"""Admin pages for invoice delivery: state at a glance, the timeline, the email attempts."""

from django.contrib import admin
from django.utils.html import format_html

from billing_project.money import format_money

from .models import DeliveryEvent, EmailAttempt, InvoiceDelivery, TrackingEvent

STATE_COLOURS = {
    "pending": "#6b7280",
    "rendered": "#2563eb",
    "stored": "#2563eb",
    "sending": "#d97706",
    "sent": "#059669",
    "delivered": "#047857",
    "bounced": "#dc2626",
    "complained": "#dc2626",
    "failed": "#b91c1c",
    "not_ours": "#9ca3af",
}


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DeliveryEventInline(ReadOnlyInline):
    model = DeliveryEvent
    fields = ["at", "step", "state_from", "state_to", "message", "by"]
    readonly_fields = fields
    verbose_name_plural = "Timeline"


class EmailAttemptInline(ReadOnlyInline):
    model = EmailAttempt
    fields = [
        "request_key",
        "template",
        "recipient",
        "status",
        "tries",
        "mailgun_message_id",
        "sent_at",
    ]
    readonly_fields = fields


@admin.register(InvoiceDelivery)
class InvoiceDeliveryAdmin(admin.ModelAdmin):
    list_display = ["number_or_id", "state_badge", "account", "total", "due_date", "updated_at"]
    list_filter = ["state", "collection_method", "account__cohort"]
    search_fields = ["number", "stripe_invoice_id", "=account__acct_id", "account__billing_email"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [EmailAttemptInline, DeliveryEventInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Invoice", ordering="number")
    def number_or_id(self, obj):
        return obj.number or obj.stripe_invoice_id

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj):
        colour = STATE_COLOURS.get(obj.state, "#6b7280")
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
            'white-space:nowrap">{}</span>',
            colour,
            obj.get_state_display(),
        )

    @admin.display(description="Total", ordering="total_minor")
    def total(self, obj):
        return format_money(obj.total_minor, obj.currency) if obj.currency else "—"


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "event_type", "recipient", "message_id", "delivery"]
    list_filter = ["event_type"]
    search_fields = ["message_id", "recipient", "event_id"]
    list_select_related = ["delivery"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
