"""Admin: export runs with their files (presigned download links), history months, legacy PDF
copies, and the month-end report download."""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing_project.admin import OperateActionsMixin, ReadOnlyAdmin
from billing_project.errors import BillingError
from billing_project.time_display import moment_text

from .history import history_verify
from .models import ExportFile, ExportRun, HistoryMonth, LegacyPdfCopy
from .month_end import month_end_report_build
from .month_end_files import month_end_file
from .objects import object_url
from .output_paths import LOCAL_PREFIX

COLOURS = {
    "running": "#2563eb",
    "succeeded": "#047857",
    "problems": "#d97706",
    "failed": "#b91c1c",
    "interrupted": "#6b7280",
    "copied": "#047857",
    "present": "#059669",
    "missing": "#b91c1c",
    "verified": "#047857",
    "unverified": "#d97706",
}
MONTHS_OFFERED = 24


def badge(state: str, label: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'white-space:nowrap">{}</span>',
        COLOURS.get(state, "#6b7280"),
        label,
    )


def download_link(key: str) -> str:
    """A presigned link for files in storage; report files written locally have none."""
    if key.startswith(LOCAL_PREFIX) or "/" not in key or key.startswith(("/", ".")):
        return key
    return format_html('<a href="{}">{}</a>', object_url(key), key)


class ExportFileInline(admin.TabularInline):
    model = ExportFile
    extra = 0
    can_delete = False
    fields = ["download", "period", "action", "rows", "bytes", "sha256"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="File")
    def download(self, obj: ExportFile) -> str:
        return download_link(obj.key)


def _recent_months(today: date) -> list[tuple[str, str]]:
    ordinal = today.year * 12 + today.month - 1
    months = [
        date((ordinal - back) // 12, (ordinal - back) % 12 + 1, 1)
        for back in range(1, MONTHS_OFFERED + 1)
    ]
    return [(f"{m:%Y-%m}", f"{m:%B %Y}") for m in months]


class MonthEndForm(forms.Form):
    month = forms.ChoiceField(help_text="Service month.")
    format = forms.ChoiceField(choices=[("xlsx", "Excel (.xlsx)"), ("csv", "CSV")])
    include_stripe = forms.BooleanField(required=False, initial=True, label="Include Stripe totals")

    def __init__(self, *args, today: date, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["month"].choices = _recent_months(today)


@admin.register(ExportRun)
class ExportRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "kind",
        "period",
        "status_badge",
        "files_written",
        "files_unchanged",
        "rows",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["range_from", "range_to", "summary"]
    date_hierarchy = "started_at"
    inlines = [ExportFileInline]
    change_list_template = "admin/exports/exportrun/change_list.html"
    readonly_fields = [
        "kind",
        "status",
        "range_from",
        "range_to",
        "options",
        "files_written",
        "files_unchanged",
        "rows",
        "bytes_written",
        "problems",
        "summary",
        "host",
        "pid",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]

    @admin.display(description="Range")
    def period(self, obj: ExportRun) -> str:
        if obj.range_from == obj.range_to:
            return obj.range_from or "all"
        return f"{obj.range_from or '…'} → {obj.range_to or '…'}"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ExportRun) -> str:
        return badge(obj.status, obj.get_status_display())

    def get_urls(self):
        return [
            path(
                "month-end/",
                self.admin_site.admin_view(self.month_end_view),
                name="exports_month_end_report",
            ),
            *super().get_urls(),
        ]

    def month_end_view(self, request):
        """Build the month-end report for a chosen month and send it as a download.

        Every account's name, owner and totals: only for users who may view export runs."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = MonthEndForm(request.POST or None, today=date.today())
        if request.method == "POST" and form.is_valid():
            month = date.fromisoformat(form.cleaned_data["month"] + "-01")
            try:
                report = month_end_report_build(
                    month=month, include_stripe=form.cleaned_data["include_stripe"]
                )
            except BillingError as exc:
                self.message_user(request, f"Report not built: {exc.message}", messages.ERROR)
            else:
                content, name, content_type = month_end_file(
                    report, fmt=form.cleaned_data["format"]
                )
                response = HttpResponse(content, content_type=content_type)
                response["Content-Disposition"] = f'attachment; filename="{name}"'
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Month-end report",
            "form": form,
            "opts": self.model._meta,
            "changelist_url": reverse("admin:exports_exportrun_changelist"),
        }
        return TemplateResponse(request, "admin/exports/month_end_form.html", context)


@admin.register(HistoryMonth)
class HistoryMonthAdmin(OperateActionsMixin, ReadOnlyAdmin):
    list_display = ["month_label", "file", "invoices", "rows", "totals", "verified", "exported_at"]
    list_filter = [("verified_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "sha256"]
    date_hierarchy = "month"
    actions = ["verify_months"]

    @admin.display(description="Month", ordering="month")
    def month_label(self, obj: HistoryMonth) -> str:
        return f"{obj.month:%Y-%m}"

    @admin.display(description="File")
    def file(self, obj: HistoryMonth) -> str:
        return download_link(obj.key)

    @admin.display(description="Sum of totals (minor units)")
    def totals(self, obj: HistoryMonth) -> str:
        return ", ".join(f"{amount:,} {currency}" for currency, amount in obj.totals_minor.items())

    @admin.display(description="Verified", ordering="verified_at")
    def verified(self, obj: HistoryMonth) -> str:
        if obj.verified_at is None:
            return badge("unverified", "not verified")
        return badge("verified", moment_text(obj.verified_at))

    @admin.action(
        description="Verify the selected months against storage and the database",
        permissions=["operate"],
    )
    def verify_months(self, request, queryset):
        months = sorted(queryset.values_list("month", flat=True))
        try:
            outcome = history_verify(first=months[0], last=months[-1])
        except BillingError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        if outcome.problems:
            shown = "; ".join(outcome.problems[:10])
            self.message_user(request, f"{len(outcome.problems)} problems: {shown}", messages.ERROR)
        else:
            self.message_user(request, outcome.run.summary, messages.SUCCESS)


@admin.register(LegacyPdfCopy)
class LegacyPdfCopyAdmin(ReadOnlyAdmin):
    list_display = ["inv_uuid", "acct_id", "status_badge", "file", "bytes", "checked_at"]
    list_filter = ["status"]
    search_fields = ["inv_uuid", "=acct_id", "key"]
    show_full_result_count = False

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: LegacyPdfCopy) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="R2 object")
    def file(self, obj: LegacyPdfCopy) -> str:
        if obj.status == LegacyPdfCopy.Status.MISSING:
            return format_html("<span title='{}'>{}</span>", obj.source, "—")
        return download_link(obj.key)
