from django.contrib import admin

from .legacy import LegacyInvoice


class ReadOnlyLegacyAdmin(admin.ModelAdmin):
    """The legacy database is read-only: view, never add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LegacyInvoice)
class LegacyInvoiceAdmin(ReadOnlyLegacyAdmin):
    list_display = ["inv_uuid", "account_id", "service_month", "total", "currency", "status"]
    list_filter = ["status", "currency"]
    search_fields = ["=inv_uuid", "=account__acct_id", "=stripe_invoice_id"]
    date_hierarchy = "service_month"
    show_full_result_count = False
