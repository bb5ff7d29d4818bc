"""Admin for the Stripe catalog we created, provisioned subscriptions and managed jobs."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from billing_project.admin import OperateActionsMixin, ReadOnlyAdmin
from billing_project.money import format_money
from billing_project.stripe_api import StripeApiError

from .models import CatalogObject, ManagedJob, SubscriptionRecord
from .services import managed_job_create, managed_job_send

STATUS_COLOURS = {
    ManagedJob.Status.PENDING: "#6b7280",
    ManagedJob.Status.SENDING: "#2563eb",
    ManagedJob.Status.SENT: "#15803d",
    ManagedJob.Status.FAILED: "#b91c1c",
}


@admin.register(CatalogObject)
class CatalogObjectAdmin(ReadOnlyAdmin):
    list_display = ["key", "object_type", "kind", "stripe_id", "adopted", "created_at"]
    list_filter = ["object_type", "kind", "adopted"]
    search_fields = ["key", "=stripe_id"]
    date_hierarchy = "created_at"


@admin.register(SubscriptionRecord)
class SubscriptionRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "cohort",
        "stripe_subscription_id",
        "billing_cycle_anchor",
        "collection_method",
        "created_at",
    ]
    list_filter = ["cohort", "collection_method"]
    search_fields = ["=account__acct_id", "account__name", "=stripe_subscription_id"]
    list_select_related = ["account", "cohort"]
    date_hierarchy = "created_at"


class ManagedJobForm(forms.ModelForm):
    class Meta:
        model = ManagedJob
        fields = ["account", "description", "service_month", "amount_minor", "currency"]
        labels = {"amount_minor": "Amount (minor units: cents for USD)"}
        help_texts = {"service_month": "Any day of the month; the job is billed for that month."}

    def clean_service_month(self):
        month = self.cleaned_data["service_month"]
        return month.replace(day=1) if month else month

    def clean_amount_minor(self):
        amount = self.cleaned_data["amount_minor"]
        if amount is not None and amount <= 0:
            raise forms.ValidationError("The amount must be more than zero.")
        return amount


@admin.register(ManagedJob)
class ManagedJobAdmin(OperateActionsMixin, admin.ModelAdmin):
    form = ManagedJobForm
    list_display = [
        "account",
        "description",
        "service_month",
        "amount",
        "status_badge",
        "stripe_invoice_item_id",
        "attempts",
    ]
    list_filter = ["status", "service_month"]
    search_fields = ["=account__acct_id", "account__name", "description", "=stripe_invoice_item_id"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    date_hierarchy = "service_month"
    show_full_result_count = False
    actions = ["send_to_stripe"]
    fields = [
        "account",
        "description",
        "service_month",
        "amount_minor",
        "currency",
        "status",
        "stripe_invoice_item_id",
        "legacy_job_id",
        "attempts",
        "last_error",
        "created_by",
        "sent_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        generated = [
            "status",
            "stripe_invoice_item_id",
            "legacy_job_id",
            "attempts",
            "last_error",
            "created_by",
            "sent_at",
        ]
        if obj is None or obj.status == ManagedJob.Status.PENDING:
            return generated
        return self.fields  # a job sent (or being sent) to Stripe is a financial record

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == ManagedJob.Status.PENDING)

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj: ManagedJob) -> str:
        return format_money(obj.amount_minor, obj.currency)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ManagedJob) -> str:
        return format_html(
            '<span title="{}" style="background:{};color:#fff;padding:2px 8px;'
            'border-radius:10px">{}</span>',
            obj.last_error or obj.get_status_display(),
            STATUS_COLOURS.get(obj.status, "#6b7280"),
            obj.get_status_display(),
        )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = managed_job_create(
            account=obj.account,
            description=obj.description,
            service_month=obj.service_month,
            amount_minor=obj.amount_minor,
            currency=obj.currency,
            by=request.user,
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    @admin.action(
        description="Send to Stripe as invoice items (next invoice)", permissions=["operate"]
    )
    def send_to_stripe(self, request, queryset):
        outcomes: dict[str, int] = {}
        for job in queryset.exclude(status=ManagedJob.Status.SENT):
            try:
                job = managed_job_send(job_id=job.pk)
            except StripeApiError as exc:
                self.message_user(request, f"{job}: {exc}", messages.ERROR)
                continue
            outcomes[job.status] = outcomes.get(job.status, 0) + 1
            if job.status == ManagedJob.Status.FAILED:
                self.message_user(request, f"{job}: {job.last_error}", messages.ERROR)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
        self.message_user(request, f"Managed jobs: {summary or 'nothing to send'}.")
