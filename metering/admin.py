from django.contrib import admin

from cohorts.models import CohortMembership

from .models import BillingAccount


class MembershipInline(admin.TabularInline):
    model = CohortMembership
    fk_name = "account"
    extra = 0
    can_delete = False
    fields = ["cohort", "joined_at", "left_at", "reason", "moved_by"]
    readonly_fields = fields
    verbose_name_plural = "Cohort history"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ["acct_id", "name", "stripe_customer_id", "billing_owner", "cohort"]
    list_filter = ["billing_owner", "cohort"]
    search_fields = ["=acct_id", "name", "stripe_customer_id", "billing_email"]
    list_select_related = ["cohort"]
    readonly_fields = ["acct_id", "cohort", "created_at", "updated_at"]
    inlines = [MembershipInline]


from . import usage_admin  # noqa: E402, F401  (registers the usage admin)
