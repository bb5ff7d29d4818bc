"""The account routing changes in the admin: the audited requests, their confirmation by a
second person, and the forms that ask for them (actions on the account list)."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing_project.admin import ReadOnlyAdmin
from billing_project.errors import BillingError
from billing_project.stripe_api import StripeApiError

from .account_changes import (
    OPERATE,
    account_change_cancel,
    account_customer_id_change,
    account_email_change_confirm,
    account_email_change_request,
)
from .models import AccountChange, BillingAccount

FIELDS = [
    "field",
    "before",
    "after",
    "reason",
    "status",
    "requested_by",
    "requested_at",
    "decided_by",
    "decided_at",
]


class AccountChangeInline(admin.TabularInline):
    model = AccountChange
    extra = 0
    can_delete = False
    fields = FIELDS
    readonly_fields = FIELDS
    verbose_name_plural = "Billing email and Stripe customer changes"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccountChange)
class AccountChangeAdmin(ReadOnlyAdmin):
    list_display = ["requested_at", "account", "field", "before", "after", "status"]
    list_filter = ["status", "field"]
    search_fields = ["=account__acct_id", "before", "after"]
    list_select_related = ["account", "requested_by", "decided_by"]
    fields = ["account", *FIELDS]
    readonly_fields = fields
    actions = ["confirm_email_changes", "cancel_changes"]

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(OPERATE)

    @admin.action(
        description="Confirm the selected email changes (as the second person)",
        permissions=["operate"],
    )
    def confirm_email_changes(self, request, queryset) -> None:
        for change in queryset.filter(field=AccountChange.Field.BILLING_EMAIL):
            try:
                account_email_change_confirm(change_id=change.pk, by=request.user)
            except BillingError as exc:
                self.message_user(request, f"{change}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Applied: {change}", messages.SUCCESS)

    @admin.action(description="Cancel the selected pending changes", permissions=["operate"])
    def cancel_changes(self, request, queryset) -> None:
        for change in queryset:
            try:
                account_change_cancel(change_id=change.pk, by=request.user)
            except BillingError as exc:
                self.message_user(request, f"{change}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Cancelled: {change}", messages.SUCCESS)


ROUTING_FORMS = {
    "request_email_change": {
        "title": "Change the billing email",
        "value_label": "New billing email",
        "submit": "Ask for the change",
        "field": "billing_email",
        "explanation": (
            "Invoices keep going to the current address until a second billing operator "
            "confirms the change under Account changes."
        ),
    },
    "change_stripe_customer": {
        "title": "Change the Stripe customer",
        "value_label": "Stripe customer id (cus_…)",
        "submit": "Change it",
        "field": "stripe_customer_id",
        "explanation": "Applied at once once Stripe confirms the customer exists; recorded.",
    },
}


def routing_change_form(model_admin, request: HttpRequest, queryset, action: str):
    """Ask for the new value and the reason, then call the service for one account."""
    if queryset.count() != 1:
        model_admin.message_user(request, "Select exactly one account.", messages.ERROR)
        return None
    account: BillingAccount = queryset.get()
    spec = ROUTING_FORMS[action]
    value, reason, error = request.POST.get("value", ""), request.POST.get("reason", ""), ""
    if request.POST.get("apply") == "yes":
        try:
            if action == "request_email_change":
                change = account_email_change_request(
                    account=account, email=value, reason=reason, by=request.user
                )
                done = f"Asked: {change}. A second operator must confirm it."
            else:
                change = account_customer_id_change(
                    account=account, customer_id=value, reason=reason, by=request.user
                )
                done = f"Changed: {change}."
        except BillingError as exc:
            error = f"{exc.field}: {exc.message}" if exc.field else exc.message
        except StripeApiError as exc:
            error = f"Stripe did not answer: {exc}"
        else:
            model_admin.message_user(request, done, messages.SUCCESS)
            return None
    return TemplateResponse(
        request,
        "admin/metering/billingaccount/routing_change.html",
        {
            **model_admin.admin_site.each_context(request),
            **spec,
            "opts": model_admin.opts,
            "account": account,
            "current": getattr(account, spec["field"]),
            "value": value,
            "reason": reason,
            "error": error,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )
