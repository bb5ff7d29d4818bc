from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import path, reverse
from django.utils.html import format_html

from billing_project.admin import ReadOnlyAdmin
from billing_project.errors import BillingError

from . import admin_views, checklist, services, transitions
from .checklist_models import (
    AccountReview,
    AuditEntry,
    ChecklistResult,
    CohortNote,
    Rollback,
    SignOff,
)
from .models import Cohort, CohortMembership
from .permissions import can_operate

STATUS_COLOURS = {
    "planned": "#6b7280",
    "ready": "#2563eb",
    "parallel_run": "#d97706",
    "migrated": "#15803d",
    "rolled_back": "#b91c1c",
}


def status_pill(status: str, label: str):
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px">{}</span>',
        STATUS_COLOURS.get(status, "#6b7280"),
        label,
    )


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "name",
        "pricing_model",
        "coloured_status",
        "member_count",
        "cycle_start",
        "cycle_end",
        "round",
        "board_link",
    ]
    list_filter = ["status", "pricing_model"]
    search_fields = ["name"]
    readonly_fields = ["status", "cycle_start", "cycle_end", "round", "status_changed_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "number", "pricing_model"] if obj is not None else fields

    actions = ["run_checks", "mark_ready", "start_parallel_run", "mark_migrated"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_members=Count("memberships", filter=Q(memberships__left_at__isnull=True)))
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("board/", view(admin_views.board), name="cohorts_board"),
            path("retirement/", view(admin_views.retirement), name="cohorts_retirement"),
            path("<int:pk>/board/", view(admin_views.detail), name="cohorts_detail"),
            path("<int:pk>/act/<slug:action>/", view(admin_views.act), name="cohorts_act"),
            *super().get_urls(),
        ]

    def has_operate_permission(self, request) -> bool:
        return can_operate(request.user)

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj):
        return obj._members

    @admin.display(description="Status", ordering="status")
    def coloured_status(self, obj):
        return status_pill(obj.status, obj.get_status_display())

    @admin.display(description="Board")
    def board_link(self, obj):
        return format_html(
            '<a href="{}">checklists &amp; gates</a>',
            reverse("admin:cohorts_detail", args=[obj.pk]),
        )

    def _each(self, request, queryset, label, call) -> None:
        for cohort in queryset:
            try:
                text = call(cohort)
            except BillingError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"Cohort {cohort.number}: {text}", messages.SUCCESS)

    @admin.action(description="Run the checks of the selected cohorts", permissions=["operate"])
    def run_checks(self, request, queryset):
        def run(cohort):
            results = services.cohort_checks_run(cohort=cohort, by=request.user)
            return f"{len(results)} checks run, {sum(not r.passed for r in results)} failing"

        self._each(request, queryset, "checks", run)

    def _move(self, request, queryset, target):
        def move(cohort):
            moved = transitions.TRANSITIONS[target](cohort=cohort, by=request.user)
            return f"now {moved.get_status_display().lower()}"

        self._each(request, queryset, target, move)

    @admin.action(description="Mark ready (pre-cohort gate)", permissions=["operate"])
    def mark_ready(self, request, queryset):
        self._move(request, queryset, Cohort.Status.READY)

    @admin.action(
        description="Start parallel run (provisions subscriptions)", permissions=["operate"]
    )
    def start_parallel_run(self, request, queryset):
        self._move(request, queryset, Cohort.Status.PARALLEL_RUN)

    @admin.action(description="Mark migrated (zero-drift gate)", permissions=["operate"])
    def mark_migrated(self, request, queryset):
        self._move(request, queryset, Cohort.Status.MIGRATED)


@admin.register(CohortMembership)
class CohortMembershipAdmin(ReadOnlyAdmin):
    list_display = ["account", "cohort", "joined_at", "left_at", "reason"]
    list_filter = ["cohort"]
    search_fields = ["=account__acct_id", "account__name"]
    list_select_related = ["account", "cohort"]
    date_hierarchy = "joined_at"


@admin.register(ChecklistResult)
class ChecklistResultAdmin(ReadOnlyAdmin):
    list_display = ["at", "cohort", "round", "item_label", "method", "outcome", "by", "summary"]
    list_filter = ["cohort", "phase", "method", "passed", "item"]
    search_fields = ["item", "summary", "note"]
    list_select_related = ["cohort", "by"]
    date_hierarchy = "at"
    show_full_result_count = False

    @admin.display(description="Item", ordering="item")
    def item_label(self, obj):
        item = checklist.BY_KEY.get(obj.item)
        return item.label if item else obj.item

    @admin.display(description="Outcome", ordering="passed")
    def outcome(self, obj):
        return status_pill(
            "migrated" if obj.passed else "rolled_back", "pass" if obj.passed else "fail"
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "cohort", "action", "subject", "by_name", "before", "after", "message"]
    list_filter = ["action", "cohort"]
    search_fields = ["subject", "message", "by_name"]
    list_select_related = ["cohort"]
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = ["cohort", "round", "by", "signed_at", "note"]
    list_filter = ["cohort"]
    list_select_related = ["cohort", "by"]


@admin.register(AccountReview)
class AccountReviewAdmin(ReadOnlyAdmin):
    list_display = ["cohort", "round", "account", "by", "signed_at", "note"]
    list_filter = ["cohort"]
    search_fields = ["=account__acct_id", "note"]
    list_select_related = ["cohort", "account", "by"]


@admin.register(CohortNote)
class CohortNoteAdmin(ReadOnlyAdmin):
    list_display = ["at", "cohort", "kind", "by", "text"]
    list_filter = ["kind", "cohort"]
    search_fields = ["text"]
    list_select_related = ["cohort", "by"]


@admin.register(Rollback)
class RollbackAdmin(ReadOnlyAdmin):
    list_display = [
        "at",
        "cohort",
        "round",
        "from_status",
        "action",
        "by",
        "completed_at",
        "reason",
    ]
    list_filter = ["cohort", "action"]
    list_select_related = ["cohort", "by"]
