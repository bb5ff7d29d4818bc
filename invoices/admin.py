"""Admin pages for invoice delivery: state at a glance, the timeline, the email attempts, and
the operator's re-send / retry / re-render, which go through the delivery services.

Delivery records are read-only here; an operator (the model's change permission) acts on them
only through the actions, so every change lands on the timeline with who asked for it.
"""

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import partial
from uuid import uuid4

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import dateformat, formats, timezone
from django.utils.html import format_html
from django_q.tasks import async_task

from billing_project.money import format_money
from billing_project.time_display import moment_text

from .models import DeliveryEvent, EmailAttempt, InvoiceDelivery, TrackingEvent
from .selectors import delivery_list, delivery_pdf_url, delivery_resend_list, month_bounds
from .services import (
    OPERATOR_STATES,
    UNKNOWN_STATUSES,
    NeedsAttention,
    RetryLater,
    delivery_rerender,
    delivery_retry,
    delivery_send_anyway,
)

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

RESEND_KEY = re.compile(r"resend-[0-9a-f]{32}")
MONTHS_OFFERED = 12
NAMES_IN_A_MESSAGE = 10


def state_badge_html(state: str, label: str) -> str:
    """The state as a coloured pill; the label's parenthesis moves to the tooltip so the
    changelist column stays narrow ("Failed", titled "Failed (needs attention)")."""
    return format_html(
        '<span title="{}" style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'white-space:nowrap">{}</span>',
        label,
        STATE_COLOURS.get(state, "#6b7280"),
        label.split(" (")[0],
    )


def moment(value: datetime | None, *, seconds: bool = False) -> str:
    """An instant for a column: "2026-11-01 02:24 UTC", or an em dash."""
    return "—" if value is None else moment_text(value, seconds=seconds)


def month_param(month: date) -> str:
    """The month filter's query value: "2026-03"."""
    return f"{month:%Y-%m}"


def month_label(month: date) -> str:
    return dateformat.format(month, "F Y")


def recent_months(count: int = MONTHS_OFFERED) -> list[date]:
    """The first day of this month and of the `count - 1` months before it, newest first."""
    month = timezone.localdate().replace(day=1)
    months = []
    for _ in range(count):
        months.append(month)
        month = (
            month.replace(year=month.year - 1, month=12)
            if month.month == 1
            else month.replace(month=month.month - 1)
        )
    return months


def _names(deliveries: list[InvoiceDelivery]) -> str:
    shown = ", ".join(str(d) for d in deliveries[:NAMES_IN_A_MESSAGE])
    hidden = len(deliveries) - NAMES_IN_A_MESSAGE
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def resend_refusal(delivery: InvoiceDelivery) -> str:
    """Why the re-send service would refuse this delivery ("" if it would send): said on the
    confirmation page, so nothing is queued only to fail in the worker."""
    if delivery.state not in OPERATOR_STATES:
        return "not sent yet, so there is nothing to re-send"
    if not delivery.pdf_key:
        return "no stored PDF to attach; re-render the PDF first"
    if delivery.email_attempt_rows.filter(status__in=UNKNOWN_STATUSES).exists():
        return (
            "an earlier send's outcome is unknown; use Retry, which asks Mailgun first "
            "(nothing is sent twice)"
        )
    return ""


def resend_recipient(delivery: InvoiceDelivery) -> str:
    """Where the re-send goes: the account's billing email, else the Stripe customer's email,
    which the latest attempt shows."""
    if delivery.account_id and delivery.account.billing_email:
        return delivery.account.billing_email
    last = getattr(delivery, "last_recipient", "")
    if last:
        return f"{last} (Stripe customer email, as last sent)"
    return "the Stripe customer's email"


class FinalizedMonthFilter(admin.SimpleListFilter):
    title = "finalized month"
    parameter_name = "month"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(month_param(m), month_label(m)) for m in recent_months()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        try:
            year, month = (int(part) for part in self.value().split("-"))
            start, end = month_bounds(date(year, month, 1))
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc
        return queryset.filter(finalized_at__gte=start, finalized_at__lt=end)


class CollectionMethodFilter(admin.SimpleListFilter):
    """Stripe's two collection methods, listed without scanning the table for its values."""

    title = "collection method"
    parameter_name = "collection_method"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [
            ("send_invoice", "Pay by link (send invoice)"),
            ("charge_automatically", "Charged automatically"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(collection_method=self.value()) if self.value() else queryset


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    empty_value_display = "—"
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DeliveryEventInline(ReadOnlyInline):
    model = DeliveryEvent
    fields = ["when", "step", "transition", "message", "origin", "by"]
    readonly_fields = fields
    verbose_name_plural = "Timeline"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")

    @admin.display(description="At")
    def when(self, obj: DeliveryEvent) -> str:
        return moment(obj.at, seconds=True)

    @admin.display(description="State change")
    def transition(self, obj: DeliveryEvent) -> str:
        if not obj.state_from or obj.state_from == obj.state_to:
            return ""
        labels = dict(InvoiceDelivery.State.choices)
        return format_html(
            '<span style="white-space:nowrap">{} → {}</span>',
            labels.get(obj.state_from, obj.state_from),
            labels.get(obj.state_to, obj.state_to),
        )

    @admin.display(description="From")
    def origin(self, obj: DeliveryEvent) -> str:
        """Where a tracking outcome came from: Mailgun's webhook or our lookup of its events."""
        source = (obj.data or {}).get("source")
        return dict(TrackingEvent.Source.choices).get(source, "") if source else ""


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
        "requested_by",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("requested_by")


@admin.register(InvoiceDelivery)
class InvoiceDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "number_or_id",
        "state_badge",
        "account_and_email",
        "total",
        "due",
        "last_event",
    ]
    list_filter = ["state", FinalizedMonthFilter, "account__cohort", CollectionMethodFilter]
    search_fields = [
        "number",
        "stripe_invoice_id",
        "account__acct_id__exact",
        "account__billing_email",
    ]
    search_help_text = "Invoice number, Stripe invoice id, legacy account id or billing email."
    list_select_related = ["account"]
    show_full_result_count = False
    empty_value_display = "—"
    actions = ["resend_email", "retry_failed", "rerender_pdf"]
    change_form_template = "admin/invoices/invoicedelivery/change_form.html"
    inlines = [EmailAttemptInline, DeliveryEventInline]
    fieldsets = [
        (
            "State",
            {
                "fields": [
                    "state_badge",
                    "last_error",
                    "not_ours_reason",
                    ("work_attempts", "next_attempt_at", "lease_until"),
                    ("created_at", "updated_at"),
                ]
            },
        ),
        (
            "Invoice",
            {
                "fields": [
                    "number",
                    "stripe_invoice_id",
                    "account",
                    "stripe_customer_id",
                    ("total", "amount_due", "amount_paid"),
                    ("finalized_at", "due_date"),
                    ("collection_method", "billing_reason", "payment_status"),
                    "hosted_invoice_url",
                    "invoice_uuid",
                ]
            },
        ),
        (
            "PDF",
            {
                "fields": [
                    "pdf_link",
                    "storage_key",
                    ("pdf_size", "render_time", "template_version"),
                    "sha256",
                ]
            },
        ),
        (
            "Email",
            {
                "fields": [
                    "customer_email",
                    ("email_template", "email_attempts"),
                    "mailgun_message_id",
                    "opened_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[InvoiceDelivery]:
        return delivery_list(queryset=super().get_queryset(request))

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Operators hold the model's change permission; auditors (view only) see, never act."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.display(description="Invoice", ordering="number")
    def number_or_id(self, obj: InvoiceDelivery) -> str:
        return format_html(
            '<span style="white-space:nowrap">{}</span>', obj.number or obj.stripe_invoice_id
        )

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj: InvoiceDelivery) -> str:
        return state_badge_html(obj.state, obj.get_state_display())

    @admin.display(description="Account / customer email", ordering="account__acct_id")
    def account_and_email(self, obj: InvoiceDelivery) -> str:
        if not obj.account_id:
            return obj.stripe_customer_id or "—"
        return format_html(
            '{}<br><span class="quiet">{}</span>',
            obj.account,
            obj.account.billing_email or "no billing email",
        )

    @admin.display(description="Customer email")
    def customer_email(self, obj: InvoiceDelivery) -> str:
        return obj.account.billing_email if obj.account_id and obj.account.billing_email else "—"

    @admin.display(description="Invoice UUID")
    def invoice_uuid(self, obj: InvoiceDelivery) -> str:
        return str(obj.inv_uuid)

    @admin.display(description="Storage key")
    def storage_key(self, obj: InvoiceDelivery) -> str:
        return obj.pdf_key or "—"

    @admin.display(description="SHA-256")
    def sha256(self, obj: InvoiceDelivery) -> str:
        return obj.pdf_sha256 or "—"

    @admin.display(description="Render time")
    def render_time(self, obj: InvoiceDelivery) -> str:
        return f"{obj.pdf_render_ms:,} ms" if obj.pdf_render_ms is not None else "—"

    @admin.display(description="Template version")
    def template_version(self, obj: InvoiceDelivery) -> str:
        return obj.pdf_template_version or "—"

    @admin.display(description="Total", ordering="total_minor")
    def total(self, obj: InvoiceDelivery) -> str:
        return format_money(obj.total_minor, obj.currency) if obj.currency else "—"

    @admin.display(description="Due", ordering="due_date")
    def due(self, obj: InvoiceDelivery) -> str:
        if not obj.due_date:
            return "—"
        return format_html('<span style="white-space:nowrap">{}</span>', f"{obj.due_date:%Y-%m-%d}")

    @admin.display(description="Amount due")
    def amount_due(self, obj: InvoiceDelivery) -> str:
        return format_money(obj.amount_due_minor, obj.currency) if obj.currency else "—"

    @admin.display(description="Amount paid")
    def amount_paid(self, obj: InvoiceDelivery) -> str:
        return format_money(obj.amount_paid_minor, obj.currency) if obj.currency else "—"

    @admin.display(description="Last event", ordering="last_event_at")
    def last_event(self, obj: InvoiceDelivery) -> str:
        if not obj.last_event_step:
            return "—"
        return format_html(
            '{}<br><span class="quiet" style="white-space:nowrap">{}</span>',
            obj.last_event_step.replace("_", " "),
            moment(obj.last_event_at),
        )

    @admin.display(description="Stored PDF")
    def pdf_link(self, obj: InvoiceDelivery) -> str:
        if not obj.pdf_key:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Download PDF</a> '
            '<span class="quiet">(the link works for 5 minutes; reload the page for a new one)'
            "</span>",
            delivery_pdf_url(delivery=obj),
        )

    @admin.display(description="Size")
    def pdf_size(self, obj: InvoiceDelivery) -> str:
        if not obj.pdf_bytes:
            return "—"
        return f"{formats.number_format(obj.pdf_bytes, force_grouping=True)} bytes"

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        return super().changelist_view(
            request, {"title": "Invoice deliveries", **(extra_context or {})}
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        delivery = self.get_object(request, object_id)
        outcome_unknown = (
            delivery is not None
            and delivery.state == InvoiceDelivery.State.FAILED
            and delivery.email_attempt_rows.filter(status__in=UNKNOWN_STATUSES).exists()
        )
        extra_context = {
            **(extra_context or {}),
            "can_operate": self.has_operate_permission(request),
            # An earlier send whose outcome is unknown is settled by Retry or Send anyway.
            "can_resend": delivery is not None
            and delivery.state in OPERATOR_STATES
            and bool(delivery.pdf_key)
            and not outcome_unknown,
            "outcome_unknown": outcome_unknown,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/resend/", view(self.resend_view), name=f"{info}_resend"),
            path("<path:object_id>/retry/", view(self.retry_view), name=f"{info}_retry"),
            path("<path:object_id>/rerender/", view(self.rerender_view), name=f"{info}_rerender"),
            path(
                "<path:object_id>/send-anyway/",
                view(self.send_anyway_view),
                name=f"{info}_send_anyway",
            ),
            *super().get_urls(),
        ]

    @admin.action(description="Re-send email…", permissions=["operate"])
    def resend_email(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        ids = list(queryset.values_list("pk", flat=True))
        if request.POST.get("post") == "yes":
            self._resend_confirmed(request, ids)
            return None
        return self._resend_confirmation(request, ids, from_changelist=True)

    @admin.action(description="Retry failed delivery", permissions=["operate"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, delivery_retry, "Retry started for")

    @admin.action(description="Re-render PDF", permissions=["operate"])
    def rerender_pdf(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, delivery_rerender, "PDF re-rendered for")

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        delivery = self._operated_delivery(request, object_id)
        if request.method == "POST":
            self._resend_confirmed(request, [delivery.pk])
            return redirect(self._change_url(delivery))
        return self._resend_confirmation(request, [delivery.pk], from_changelist=False)

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._detail_action(request, object_id, delivery_retry, "Retry started for")

    def rerender_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._detail_action(request, object_id, delivery_rerender, "PDF re-rendered for")

    def send_anyway_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Send although Mailgun cannot say whether an earlier send went out: confirmed first."""
        delivery = self._operated_delivery(request, object_id)
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            self._run(request, [delivery], delivery_send_anyway, "Sending anyway for")
            return redirect(self._change_url(delivery))
        context = {
            **self.admin_site.each_context(request),
            "title": "Send anyway?",
            "opts": self.opts,
            "delivery": delivery,
            "unknown": delivery.email_attempt_rows.filter(status__in=UNKNOWN_STATUSES),
            "cancel_url": self._change_url(delivery),
        }
        return TemplateResponse(
            request, "admin/invoices/invoicedelivery/send_anyway_confirmation.html", context
        )

    def _detail_action(
        self, request: HttpRequest, object_id: str, service: Callable[..., object], done: str
    ) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        delivery = self._operated_delivery(request, object_id)
        self._run(request, [delivery], service, done)
        return redirect(self._change_url(delivery))

    def _operated_delivery(self, request: HttpRequest, object_id: str) -> InvoiceDelivery:
        if not self.has_operate_permission(request):
            raise PermissionDenied
        pk = unquote(object_id)
        delivery = InvoiceDelivery.objects.filter(pk=pk).first() if pk.isdigit() else None
        if delivery is None:
            raise Http404("No such invoice delivery.")
        return delivery

    def _change_url(self, delivery: InvoiceDelivery) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[delivery.pk]
        )

    def _run(
        self,
        request: HttpRequest,
        deliveries: Iterable[InvoiceDelivery],
        service: Callable[..., object],
        done: str,
    ) -> None:
        """Call `service` once per delivery; a refusal or a passing failure is reported for
        that delivery and the others still run."""
        succeeded = []
        for delivery in deliveries:
            try:
                service(delivery_id=delivery.pk, by=request.user)
            except NeedsAttention as exc:
                self.message_user(request, f"{delivery}: {exc}", messages.WARNING)
            except RetryLater as exc:
                self.message_user(
                    request, f"{delivery}: {exc}. Try again in a few minutes.", messages.ERROR
                )
            else:
                succeeded.append(delivery)
        if succeeded:
            self.message_user(request, f"{done} {_names(succeeded)}.", messages.SUCCESS)

    def _resend_confirmation(
        self, request: HttpRequest, delivery_ids: list[int], *, from_changelist: bool
    ) -> TemplateResponse:
        rows = [
            {
                "delivery": d,
                "badge": state_badge_html(d.state, d.get_state_display()),
                "total": format_money(d.total_minor, d.currency) if d.currency else "—",
                "recipient": resend_recipient(d),
                "refusal": resend_refusal(d),
            }
            for d in delivery_resend_list(delivery_ids=delivery_ids)
        ]
        sendable = sum(1 for row in rows if not row["refusal"])
        if from_changelist:
            cancel_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        else:
            cancel_url = self._change_url(rows[0]["delivery"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Re-send invoice email?",
            "opts": self.opts,
            "rows": rows,
            "sendable": sendable,
            "from_changelist": from_changelist,
            "delivery_ids": delivery_ids,
            # Minted once per confirmation form: submitting the same form twice (a double
            # click, a browser re-post) reuses the key, and the service sends once per key.
            "request_key": f"resend-{uuid4().hex}",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "cancel_url": cancel_url,
        }
        return TemplateResponse(
            request, "admin/invoices/invoicedelivery/resend_confirmation.html", context
        )

    def _resend_confirmed(self, request: HttpRequest, delivery_ids: list[int]) -> None:
        request_key = request.POST.get("request_key", "")
        if not RESEND_KEY.fullmatch(request_key):
            self.message_user(
                request, "The confirmation was incomplete; nothing was sent.", messages.ERROR
            )
            return
        queued = []
        for delivery in delivery_resend_list(delivery_ids=delivery_ids):
            refusal = resend_refusal(delivery)
            if refusal:
                self.message_user(request, f"{delivery}: {refusal}", messages.WARNING)
                continue
            transaction.on_commit(
                partial(
                    async_task,
                    "invoices.tasks.delivery_resend_task",
                    delivery.pk,
                    request_key,
                    request.user.pk,
                    task_name=f"{request_key}-{delivery.pk}",
                )
            )
            queued.append(delivery)
        if queued:
            self.message_user(
                request,
                f"Re-send queued for {_names(queued)}; the timeline shows when it is sent.",
                messages.SUCCESS,
            )


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "event_type", "recipient", "message_id", "source", "delivery"]
    list_filter = ["event_type", "source"]
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
