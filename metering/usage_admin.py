"""Admin for producer tokens, the usage ledger and its outbox to Stripe meters.

Tokens are created here and shown once. Usage records and revisions are financial records:
read-only; the outbox offers a retry of failed rows, a send-now, and settling a too-late row
(type how it was billed in its note).
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from billing_project.admin import OperateActionsMixin, ReadOnlyAdmin
from billing_project.errors import BillingError

from .usage_models import MeterErrorReport, ProducerToken, UsageRecord, UsageRevision
from .usage_outbox import usage_revision_retry, usage_revision_settle
from .usage_services import producer_token_create, producer_token_revoke

STATE_COLOURS = {
    "pending": "#6b7280",
    "sent": "#059669",
    "failed": "#b91c1c",
    "too_late": "#d97706",
    "settled": "#2563eb",
    "active": "#059669",
    "revoked": "#9ca3af",
}


def _badge(key: str, label: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'white-space:nowrap">{}</span>',
        STATE_COLOURS.get(key, "#6b7280"),
        label,
    )


@admin.register(ProducerToken)
class ProducerTokenAdmin(OperateActionsMixin, admin.ModelAdmin):
    list_display = ["name", "prefix", "status", "created_at", "created_by", "last_used_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]
    fields = ["name", "prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="status")
    def status(self, obj: ProducerToken) -> str:
        return _badge("active", "active") if obj.is_active else _badge("revoked", "revoked")

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ProducerToken, form, change: bool) -> None:
        if change:
            return
        token, raw = producer_token_create(name=obj.name, by=request.user)
        obj.pk, obj.prefix, obj.created_at = token.pk, token.prefix, token.created_at
        self.message_user(
            request,
            format_html(
                "Token for {} — copy it now, it is not shown again: <code>{}</code>",
                token.name,
                raw,
            ),
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["operate"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ProducerToken]) -> None:
        for token in queryset:
            producer_token_revoke(token_id=token.pk)
        self.message_user(request, f"{queryset.count()} token(s) revoked.", messages.SUCCESS)


class RevisionInline(admin.TabularInline):
    model = UsageRevision
    extra = 0
    can_delete = False
    fields = ["revision", "quantity", "delta", "state", "attempts", "sent_at", "last_error"]
    readonly_fields = fields
    ordering = ["revision"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ["period", "acct_id", "usage_type", "quantity", "revision", "updated_at"]
    list_filter = ["usage_type", "account__billing_owner"]
    search_fields = ["=account__acct_id", "account__name"]
    date_hierarchy = "period"
    list_select_related = ["account"]
    show_full_result_count = False
    inlines = [RevisionInline]

    @admin.display(description="acct_id", ordering="account__acct_id")
    def acct_id(self, obj: UsageRecord) -> int:
        return obj.account.acct_id

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SettledFilter(admin.SimpleListFilter):
    title = "too late"
    parameter_name = "too_late"

    def lookups(self, request, model_admin):
        return [("open", "to settle"), ("settled", "settled")]

    def queryset(self, request, queryset):
        too_late = queryset.filter(state=UsageRevision.State.TOO_LATE)
        if self.value() == "open":
            return too_late.filter(resolved_at__isnull=True)
        if self.value() == "settled":
            return too_late.filter(resolved_at__isnull=False)
        return queryset


@admin.register(UsageRevision)
class UsageRevisionAdmin(OperateActionsMixin, admin.ModelAdmin):
    list_display = [
        "identifier",
        "status",
        "delta",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "problem",
    ]
    list_filter = ["state", SettledFilter, "record__usage_type"]
    search_fields = ["identifier", "=record__account__acct_id"]
    date_hierarchy = "created_at"
    list_select_related = ["record", "record__account"]
    show_full_result_count = False
    actions = ["retry", "send_now"]
    fields = [
        "identifier",
        "record",
        "revision",
        "quantity",
        "delta",
        "event_timestamp",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
        "too_late_reason",
        "resolution_note",
        "resolved_at",
        "resolved_by",
        "created_at",
    ]

    @admin.display(description="state", ordering="state")
    def status(self, obj: UsageRevision) -> str:
        if obj.state == UsageRevision.State.TOO_LATE and obj.resolved_at:
            return _badge("settled", "too late · settled")
        return _badge(obj.state, obj.get_state_display().split(" (")[0])

    @admin.display(description="problem")
    def problem(self, obj: UsageRevision) -> str:
        return (obj.too_late_reason or obj.last_error)[:120]

    def get_readonly_fields(self, request, obj=None):
        settling = (
            obj is not None
            and obj.state == UsageRevision.State.TOO_LATE
            and obj.resolved_at is None
        )
        return [f for f in self.fields if not (settling and f == "resolution_note")]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "resolution_note" in form.base_fields:
            note = form.base_fields["resolution_note"]
            note.required = True
            note.help_text = "How it was billed instead: the invoice item or credit note id."
        return form

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request: HttpRequest, obj: UsageRevision, form, change: bool) -> None:
        if "resolution_note" not in form.cleaned_data:
            return  # nothing on this row can be changed
        try:
            settled = usage_revision_settle(
                revision_id=obj.pk,
                note=form.cleaned_data.get("resolution_note", ""),
                by=request.user,
            )
        except BillingError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        if settled:
            self.message_user(request, f"{obj.identifier} settled.", messages.SUCCESS)

    @admin.action(description="Retry the selected failed rows", permissions=["operate"])
    def retry(self, request: HttpRequest, queryset: QuerySet[UsageRevision]) -> None:
        now = timezone.now()
        retried = 0
        for revision in queryset:
            try:
                retried += usage_revision_retry(revision_id=revision.pk, now=now)
            except BillingError as exc:
                self.message_user(request, f"{revision.identifier}: {exc.message}", messages.ERROR)
        skipped = queryset.count() - retried
        self.message_user(
            request,
            f"{retried} row(s) back in the outbox"
            + (f"; {skipped} skipped (only failed rows can be retried)" if skipped else "."),
            messages.SUCCESS if retried else messages.WARNING,
        )

    @admin.action(description="Send due rows now (queue an outbox run)", permissions=["operate"])
    def send_now(self, request: HttpRequest, queryset: QuerySet[UsageRevision]) -> None:
        from django_q.tasks import async_task

        async_task("metering.tasks.usage_outbox_send_task", task_name="usage-outbox-now")
        self.message_user(request, "An outbox run is queued.", messages.SUCCESS)


@admin.register(MeterErrorReport)
class MeterErrorReportAdmin(ReadOnlyAdmin):
    """Stripe's later refusals of meter events it had accepted (thin error reports)."""

    list_display = [
        "received_at",
        "event_type",
        "event_id",
        "state",
        "error_count",
        "revisions_refused",
        "last_error",
    ]
    list_filter = ["state", "event_type"]
    search_fields = ["=event_id"]
    date_hierarchy = "received_at"
    readonly_fields = [
        "event_id",
        "event_type",
        "received_at",
        "state",
        "error_count",
        "revisions_refused",
        "detail",
        "last_error",
    ]
