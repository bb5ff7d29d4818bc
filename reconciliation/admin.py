"""Reconciliation in the admin: runs at a glance (status, counts, duration, a 60-day drift
chart per cohort), per-account results, and drift records followed up through actions.

Everything here is a financial record: read-only. Drift records change only through the
actions, which call the drift services and land in the record's history with who and a note.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from billing_project.errors import BillingError
from billing_project.money import format_money

from .drift import drift_record_note, drift_record_transition
from .legacy import LegacyInvoice
from .models import DriftRecord, DriftRecordEvent, ReconciliationResult, ReconciliationRun

STATUS_COLOURS = {
    "running": "#2563eb",
    "clean": "#059669",
    "pending": "#d97706",
    "drift": "#dc2626",
    "error": "#7f1d1d",
    "open": "#dc2626",
    "investigating": "#d97706",
    "resolved": "#059669",
    "explained": "#6b7280",
}


def status_badge(status: str, label: str) -> str:
    return format_html(
        '<span class="recon-badge" data-status="{}" style="background:{};color:#fff;'
        'padding:2px 8px;border-radius:10px;white-space:nowrap">{}</span>',
        status,
        STATUS_COLOURS.get(status, "#6b7280"),
        label,
    )


def signed_money(amount_minor: int, currency: str) -> str:
    return ("+" if amount_minor > 0 else "") + format_money(amount_minor, currency)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records are never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyLegacyAdmin(ReadOnlyAdmin):
    """The legacy database is read-only: view, never add, change or delete.

    Django's add, change and delete views open a transaction on the model's write database
    before they check permissions, and the router refuses any write use of the legacy alias;
    these pages are answered here instead: read-only for GET, 403 for everything else.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is None or request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        return self._changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied


@admin.register(LegacyInvoice)
class LegacyInvoiceAdmin(ReadOnlyLegacyAdmin):
    list_display = ["inv_uuid", "account_id", "service_month", "total", "currency", "status"]
    list_filter = ["status", "currency"]
    search_fields = ["=inv_uuid", "=account__acct_id", "=stripe_invoice_id"]
    date_hierarchy = "service_month"
    show_full_result_count = False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = [
        "run_date",
        "month",
        "scope_key",
        "attempt",
        "status_badge",
        "accounts_checked",
        "accounts_clean",
        "accounts_drift",
        "accounts_pending",
        "delta",
        "duration",
        "trigger",
        "results_link",
    ]
    list_filter = ["status", "trigger", "scope_key", "service_month"]
    search_fields = ["=scope_key", "error"]
    date_hierarchy = "run_date"
    show_full_result_count = False
    readonly_fields = [
        "run_date",
        "service_month",
        "scope_key",
        "cohort_number",
        "attempt",
        "trigger",
        "forced",
        "requested_by",
        "status_badge",
        "legacy_deadline",
        "accounts_checked",
        "accounts_clean",
        "accounts_drift",
        "accounts_pending",
        "members_in_scope",
        "stripe_invoices_read",
        "legacy_invoices_read",
        "total_delta_minor",
        "error",
        "timings_ms",
        "started_at",
        "finished_at",
        "duration",
        "results_link",
    ]
    exclude = ["status"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ReconciliationRun) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Service month", ordering="service_month")
    def month(self, obj: ReconciliationRun) -> str:
        return f"{obj.service_month:%Y-%m}"

    @admin.display(description="Drift delta", ordering="total_delta_minor")
    def delta(self, obj: ReconciliationRun) -> str:
        return signed_money(obj.total_delta_minor, "usd") if obj.accounts_drift else "—"

    @admin.display(description="Duration")
    def duration(self, obj: ReconciliationRun) -> str:
        seconds = obj.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="Results")
    def results_link(self, obj: ReconciliationRun) -> str:
        url = reverse("admin:reconciliation_reconciliationresult_changelist")
        return format_html(
            '<a href="{}?{}">{} results</a>',
            url,
            urlencode({"run__id__exact": obj.pk}),
            obj.accounts_checked,
        )

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        return super().changelist_view(
            request, {"title": "Reconciliation runs", **(extra_context or {})}
        )


@admin.register(ReconciliationResult)
class ReconciliationResultAdmin(ReadOnlyAdmin):
    list_display = [
        "acct_id",
        "cohort_number",
        "month",
        "status_badge",
        "stripe_total",
        "legacy_total",
        "delta",
        "reason",
        "kinds",
        "run",
    ]
    list_filter = ["status", "reason", "cohort_number", "service_month"]
    search_fields = ["=acct_id"]
    list_select_related = ["run"]
    show_full_result_count = False
    readonly_fields = [
        "run",
        "acct_id",
        "cohort_number",
        "service_month",
        "status_badge",
        "reason",
        "currency",
        "stripe_total",
        "legacy_total",
        "delta",
        "breakdown",
        "stripe_invoice_ids",
        "legacy_inv_uuids",
    ]
    exclude = ["account", "status", "stripe_by_kind", "legacy_by_kind", "drift_kinds"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ReconciliationResult) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Service month", ordering="service_month")
    def month(self, obj) -> str:
        return f"{obj.service_month:%Y-%m}"

    @admin.display(description="Stripe", ordering="stripe_total_minor")
    def stripe_total(self, obj) -> str:
        return format_money(obj.stripe_total_minor, obj.currency)

    @admin.display(description="Legacy", ordering="legacy_total_minor")
    def legacy_total(self, obj) -> str:
        return format_money(obj.legacy_total_minor, obj.currency)

    @admin.display(description="Delta", ordering="delta_minor")
    def delta(self, obj) -> str:
        return signed_money(obj.delta_minor, obj.currency)

    @admin.display(description="Kinds differing")
    def kinds(self, obj) -> str:
        return ", ".join(obj.drift_kinds) or "—"

    @admin.display(description="Per kind (Stripe / legacy)")
    def breakdown(self, obj: ReconciliationResult) -> str:
        rows = (
            (
                kind,
                " ⚠" if kind in obj.drift_kinds else "",
                format_money(obj.stripe_by_kind.get(kind, 0), obj.currency),
                format_money(obj.legacy_by_kind.get(kind, 0), obj.currency),
            )
            for kind in obj.stripe_by_kind
        )
        return format_html(
            "<table><tr><th>Kind</th><th>Stripe</th><th>Legacy</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}{}</td><td>{}</td><td>{}</td></tr>", rows),
        )


class DriftEventInline(admin.TabularInline):
    model = DriftRecordEvent
    extra = 0
    can_delete = False
    fields = ["at", "action", "from_status", "to_status", "delta_minor", "note", "by_name", "run"]
    readonly_fields = fields
    verbose_name = "history entry"
    verbose_name_plural = "History"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(DriftRecord)
class DriftRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "acct_id",
        "cohort_number",
        "month",
        "status_badge",
        "delta",
        "reason",
        "kinds_shown",
        "detections",
        "last_detected_at",
        "status_changed_by",
        "note",
    ]
    list_filter = ["status", "reason", "cohort_number", "service_month"]
    search_fields = ["=acct_id", "note"]
    list_select_related = ["status_changed_by"]
    date_hierarchy = "last_detected_at"
    readonly_fields = [
        "acct_id",
        "cohort_number",
        "service_month",
        "status_badge",
        "reason",
        "kinds_shown",
        "currency",
        "stripe_total_minor",
        "legacy_total_minor",
        "delta",
        "stripe_invoice_ids",
        "legacy_inv_uuids",
        "note",
        "status_changed_by",
        "status_changed_at",
        "detections",
        "first_run",
        "last_run",
        "first_detected_at",
        "last_detected_at",
    ]
    exclude = ["account", "status", "kinds", "delta_minor"]
    inlines = [DriftEventInline]
    actions = ["mark_investigating", "mark_resolved", "mark_explained", "reopen", "add_note"]

    def has_follow_up_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("reconciliation.change_driftrecord")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: DriftRecord) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Service month", ordering="service_month")
    def month(self, obj) -> str:
        return f"{obj.service_month:%Y-%m}"

    @admin.display(description="Delta", ordering="delta_minor")
    def delta(self, obj) -> str:
        return signed_money(obj.delta_minor, obj.currency)

    @admin.display(description="Kinds")
    def kinds_shown(self, obj) -> str:
        return ", ".join(obj.kinds) or "—"

    def _follow_up(
        self, request: HttpRequest, queryset: QuerySet, *, to_status: str | None, title: str
    ) -> HttpResponse | None:
        """Ask for the note first; then apply to each selected record through the service."""
        if request.POST.get("apply") != "yes":
            return TemplateResponse(
                request,
                "admin/reconciliation/driftrecord/follow_up.html",
                {
                    **self.admin_site.each_context(request),
                    "title": title,
                    "records": queryset,
                    "action": request.POST.get("action"),
                    "note_required": to_status in ("resolved", "explained") or to_status is None,
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        note = request.POST.get("note", "")
        done, refused = 0, []
        for record in queryset:
            try:
                if to_status is None:
                    drift_record_note(record_id=record.pk, note=note, by=request.user)
                else:
                    drift_record_transition(
                        record_id=record.pk, to_status=to_status, note=note, by=request.user
                    )
                done += 1
            except BillingError as exc:
                refused.append(f"{record}: {exc.message}")
        if done:
            self.message_user(
                request, f"{title}: {done} drift record(s) updated.", messages.SUCCESS
            )
        for message in refused:
            self.message_user(request, message, messages.ERROR)
        return None

    @admin.action(description="Mark investigating…", permissions=["follow_up"])
    def mark_investigating(self, request, queryset):
        return self._follow_up(request, queryset, to_status="investigating", title="Investigating")

    @admin.action(description="Mark resolved (note required)…", permissions=["follow_up"])
    def mark_resolved(self, request, queryset):
        return self._follow_up(request, queryset, to_status="resolved", title="Resolved")

    @admin.action(description="Mark explained (note required)…", permissions=["follow_up"])
    def mark_explained(self, request, queryset):
        return self._follow_up(request, queryset, to_status="explained", title="Explained")

    @admin.action(description="Reopen…", permissions=["follow_up"])
    def reopen(self, request, queryset):
        return self._follow_up(request, queryset, to_status="open", title="Reopened")

    @admin.action(description="Add a note…", permissions=["follow_up"])
    def add_note(self, request, queryset):
        return self._follow_up(request, queryset, to_status=None, title="Note added")
