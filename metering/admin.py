from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from billing_project.admin import OperateActionsMixin
from billing_project.stripe_api import StripeApiError
from cohorts.models import CohortMembership

from .account_change_admin import AccountChangeInline, routing_change_form
from .locks import RunInProgress
from .models import BillingAccount
from .services import (
    CustomerLinkError,
    account_link_customer,
    managed_jobs_import_legacy,
    portal_session_create,
)


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
class BillingAccountAdmin(OperateActionsMixin, admin.ModelAdmin):
    list_display = ["acct_id", "name", "stripe_customer_id", "billing_owner", "cohort"]
    list_filter = ["billing_owner", "cohort"]
    search_fields = ["=acct_id", "name", "stripe_customer_id", "billing_email"]
    list_select_related = ["cohort"]
    # Where invoices go and who bills: never edited in this form. The billing owner moves
    # with cohort transitions; the email and the Stripe customer through the audited actions.
    readonly_fields = [
        "acct_id",
        "billing_owner",
        "billing_email",
        "stripe_customer_id",
        "cohort",
        "created_at",
        "updated_at",
    ]
    inlines = [MembershipInline, AccountChangeInline]
    actions = [
        "customer_portal",
        "link_stripe_customer",
        "import_legacy_managed_jobs",
        "request_email_change",
        "change_stripe_customer",
    ]

    @admin.action(
        description="Change the billing email… (a second operator confirms)",
        permissions=["operate"],
    )
    def request_email_change(self, request, queryset):
        return routing_change_form(self, request, queryset, "request_email_change")

    @admin.action(description="Change the Stripe customer id…", permissions=["operate"])
    def change_stripe_customer(self, request, queryset):
        return routing_change_form(self, request, queryset, "change_stripe_customer")

    @admin.action(
        description="Open a Stripe Customer Portal session (one account)", permissions=["operate"]
    )
    def customer_portal(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one account.", messages.ERROR)
            return
        account = queryset.get()
        back = request.build_absolute_uri(
            reverse("admin:metering_billingaccount_change", args=[account.pk])
        )
        try:
            url = portal_session_create(account=account, return_url=back)
        except (CustomerLinkError, StripeApiError) as exc:
            self.message_user(request, f"No portal session: {exc}", messages.ERROR)
            return
        self.message_user(
            request,
            format_html(
                'Portal session for {}: <a href="{}" target="_blank" rel="noopener">{}</a> '
                "(valid for a short time; share it only with the customer)",
                account,
                url,
                url,
            ),
        )

    @admin.action(description="Link to the existing Stripe customer", permissions=["operate"])
    def link_stripe_customer(self, request, queryset):
        for account in queryset:
            try:
                result = account_link_customer(account=account)
            except (CustomerLinkError, RunInProgress, StripeApiError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(
                request, f"{account}: {result.outcome} {result.customer_id}", messages.SUCCESS
            )

    @admin.action(description="Import their legacy managed-service jobs", permissions=["operate"])
    def import_legacy_managed_jobs(self, request, queryset):
        created = managed_jobs_import_legacy(
            acct_ids=list(queryset.values_list("acct_id", flat=True))
        )
        self.message_user(request, f"{created} managed jobs imported from the legacy database.")


from . import catalog_admin, usage_admin  # noqa: E402, F401  (registers the usage admin)
