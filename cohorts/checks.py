"""The automated checklist checks. Each only reads (our database, Stripe, Mailgun, storage) and
answers pass or fail with a summary and the concrete ids it looked at."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import getaddresses
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.files.storage import storages

from billing_project.errors import BillingError
from billing_project.stripe_api import StripeApiError
from metering.models import BillingAccount

from . import gateways, sources
from .checklist_models import CohortNote
from .models import Cohort

REPRESENTATIVE_MEMBERS = 3
DELIVERED_STATES = ("sent", "delivered")
SHOWN = 8  # problems named in a summary; the evidence keeps them all


@dataclass
class Outcome:
    passed: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


class CheckContext:
    """One run of a cohort's checks: members read once, Stripe answers shared between items."""

    def __init__(self, cohort: Cohort, *, today: date | None = None) -> None:
        self.cohort = cohort
        self.today = today or datetime.now(UTC).date()
        self._cache: dict[str, Any] = {}

    @cached_property
    def members(self) -> list[BillingAccount]:
        return list(BillingAccount.objects.filter(cohort=self.cohort).order_by("acct_id"))

    @property
    def member_ids(self) -> list[int]:
        return [account.pk for account in self.members]

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def _problems(summary_ok: str, problems: list[str], evidence: dict[str, Any]) -> Outcome:
    if not problems:
        return Outcome(True, summary_ok, evidence)
    shown = "; ".join(problems[:SHOWN])
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    evidence = {**evidence, "problems": problems}
    return Outcome(False, f"{len(problems)} problem(s): {shown}{more}", evidence)


def _no_members(ctx: CheckContext) -> Outcome | None:
    if not ctx.members:
        return Outcome(False, "the cohort has no members", {"accounts": []})
    return None


# --- catalog (metering's catalog_verify, shared by three items) --------------------------------


def _catalog_item(problem: str) -> str:
    if "metered" in problem or "tier" in problem or " price:" in problem:
        return "metered_prices"
    if "subscription" in problem and not problem.startswith("flat"):
        return "subscriptions"
    return "flat_price"  # flat items, and a legacy plan that cannot be priced at all


def _catalog(ctx: CheckContext, item: str, ok: str) -> Outcome:
    if empty := _no_members(ctx):
        return empty
    report = ctx.cached("catalog", lambda: sources.catalog_report(ctx.cohort.number))
    records = ctx.cached("subscriptions", lambda: sources.subscriptions_of(ctx.member_ids))
    evidence: dict[str, Any] = {"accounts": [a.acct_id for a in ctx.members]}
    if item == "subscriptions":
        evidence["subscriptions"] = sorted(r.stripe_subscription_id for r in records.values())
    else:
        kind = "flat" if item == "flat_price" else "metered"
        evidence["prices"] = sorted(
            {
                entry["price"]
                for record in records.values()
                for entry in record.items
                if (entry.get("metadata", {}).get("kind") == "flat") == (kind == "flat")
            }
        )
    problems = [str(f) for f in report.findings if _catalog_item(f.problem) == item]
    missing = [a for a in ctx.members if a.pk not in records]
    if item == "subscriptions":
        named = {f.acct_id for f in report.findings if f.problem == "no subscription provisioned"}
        problems += [
            f"account {a.acct_id}: no subscription provisioned"
            for a in missing
            if a.acct_id not in named
        ]
    else:
        # No subscription, nothing whose prices could be compared: not a pass.
        problems = [f"account {a.acct_id}: no subscription to compare" for a in missing] + problems
    return _problems(ok.format(n=report.accounts), problems, evidence)


def check_subscriptions(ctx: CheckContext) -> Outcome:
    return _catalog(ctx, "subscriptions", "a live Stripe subscription for each of {n} members")


def check_flat_price(ctx: CheckContext) -> Outcome:
    return _catalog(ctx, "flat_price", "flat items bill the legacy sub_rate for {n} members")


def check_metered_prices(ctx: CheckContext) -> Outcome:
    return _catalog(ctx, "metered_prices", "metered prices match the legacy tiers ({n} members)")


# --- usage, webhook trial, PDF, email --------------------------------------------------------


def check_usage_signal(ctx: CheckContext) -> Outcome:
    """Each member with tiered usage has usage Stripe holds exactly as our ledger does, for a
    type of its plan, this month or last (the staging trial of POST /usage shows up here)."""
    if empty := _no_members(ctx):
        return empty
    types = sources.metered_types(a.acct_id for a in ctx.members)
    accounts = [a for a in ctx.members if a.acct_id in types]
    if not accounts:
        return Outcome(True, "no member has metered usage (flat plans only)", {"metered": []})
    this_month = ctx.today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    lines = sources.usage_quantities(accounts, (last_month, this_month))
    relevant = [line for line in lines if line.usage_type in types[line.acct_id]]
    evidence = {
        "lines": [
            {
                "acct_id": line.acct_id,
                "type": line.usage_type,
                "month": f"{line.month:%Y-%m}",
                "ledger": line.ledger,
                "stripe": line.stripe,
                "status": line.status,
                "meter": line.meter_id,
                "customer": line.customer_id,
            }
            for line in relevant
            if line.ledger or line.stripe
        ]
    }
    problems = []
    for account in accounts:
        own = [line for line in relevant if line.acct_id == account.acct_id]
        if any(line.ledger > 0 and line.status == sources.USAGE_MATCH for line in own):
            continue
        seen = [line for line in own if line.ledger or line.stripe]
        if not seen:
            problems.append(f"account {account.acct_id}: no usage recorded")
        else:
            line = seen[-1]
            problems.append(
                f"account {account.acct_id}: {line.usage_type} {line.month:%Y-%m} ledger "
                f"{line.ledger}, Stripe {line.stripe} ({line.status})"
            )
    return _problems(
        f"usage visible in Stripe for {len(accounts)} metered members", problems, evidence
    )


def check_webhook_trial(ctx: CheckContext) -> Outcome:
    if empty := _no_members(ctx):
        return empty
    customers = [a.stripe_customer_id for a in ctx.members if a.stripe_customer_id]
    trials = sources.test_mode_finalized(customers)
    evidence = {
        "events": [t.event_id for t in trials[:10]],
        "deliveries": [t.delivery_id for t in trials[:10] if t.delivery_id],
    }
    processed = [t for t in trials if t.delivery_id and t.delivery_state not in ("", "failed")]
    if processed:
        first = processed[0]
        return Outcome(
            True,
            f"test-mode invoice.finalized {first.event_id} ({first.invoice_id}) processed: "
            f"delivery {first.delivery_id} is {first.delivery_state}",
            evidence,
        )
    if trials:
        return Outcome(
            False, f"{len(trials)} test-mode invoice.finalized, none processed", evidence
        )
    return Outcome(False, "no test-mode invoice.finalized received for any member", evidence)


def check_pdf_rendered(ctx: CheckContext) -> Outcome:
    if empty := _no_members(ctx):
        return empty
    wanted = min(REPRESENTATIVE_MEMBERS, len(ctx.members))
    storage = storages["default"]
    seen: dict[int, tuple[int, str]] = {}
    problems = []
    for delivery in sources.deliveries_of(ctx.member_ids).exclude(pdf_key=""):
        acct_id = delivery.account.acct_id
        if acct_id in seen:
            continue
        try:
            stored = storage.exists(delivery.pdf_key)
        except Exception as exc:  # storage clients raise their own errors
            return Outcome(False, f"storage could not be read: {exc}", {"key": delivery.pdf_key})
        if stored:
            seen[acct_id] = (delivery.pk, delivery.pdf_key)
        else:
            problems.append(f"delivery {delivery.pk}: {delivery.pdf_key} is not in storage")
    evidence = {"pdfs": [{"acct_id": a, "delivery": d, "key": k} for a, (d, k) in seen.items()]}
    if len(seen) < wanted:
        problems.insert(0, f"PDFs stored for {len(seen)} member(s), {wanted} wanted")
        return _problems("", problems, evidence)
    return Outcome(True, f"PDFs rendered and stored for {len(seen)} members", evidence)


def check_mailgun_send(ctx: CheckContext) -> Outcome:
    if empty := _no_members(ctx):
        return empty
    attempt = sources.sent_emails_of(ctx.member_ids).first()
    if attempt is None:
        return Outcome(False, "no invoice email sent through Mailgun for any member", {})
    evidence: dict[str, Any] = {
        "email_attempt": str(attempt.attempt_id),
        "delivery": attempt.delivery_id,
        "message_id": attempt.mailgun_message_id,
    }
    try:
        events = gateways.mailgun_accepted_events(attempt.mailgun_message_id)
    except gateways.MailgunUnavailable as exc:
        return Outcome(False, f"Mailgun could not be read: {exc}", evidence)
    evidence["events"] = [event.get("id") for event in events]
    if not events:
        return Outcome(
            False, f"Mailgun has no accepted event for {attempt.mailgun_message_id}", evidence
        )
    message = events[0].get("message") or {}
    recipients = {
        r.lower() for event in events for r in (event.get("message") or {}).get("recipients", [])
    }
    senders = [
        addr.lower() for _, addr in getaddresses([(message.get("headers") or {}).get("from", "")])
    ]
    problems = []
    if not any(
        a.get("content-type") == "application/pdf" or str(a.get("filename", "")).endswith(".pdf")
        for a in message.get("attachments", [])
    ):
        problems.append("no PDF attached")
    bcc = settings.BILLING_BCC_ADDRESS.lower()
    if not bcc or bcc not in recipients:
        problems.append(
            f"BCC {settings.BILLING_BCC_ADDRESS or '(none configured)'} not a recipient"
        )
    if settings.BILLING_FROM_EMAIL.lower() not in senders:
        problems.append(f"sent from {', '.join(senders) or '?'}, not {settings.BILLING_FROM_EMAIL}")
    problems = [f"{attempt.mailgun_message_id}: {p}" for p in problems]
    try:
        templates = gateways.mailgun_invoice_templates_check()
    except gateways.MailgunUnavailable as exc:
        return Outcome(False, f"Mailgun's templates could not be read: {exc}", evidence)
    evidence["templates"] = {t.name: t.tag for t in templates}
    problems.extend(problem for template in templates for problem in template.problems)
    return _problems(
        f"{attempt.mailgun_message_id}: PDF attached, BCC present, "
        f"from {settings.BILLING_FROM_EMAIL}; templates "
        f"{', '.join(t.name for t in templates)} stored and using our variables",
        problems,
        evidence,
    )


def check_history_export(ctx: CheckContext) -> Outcome:
    if empty := _no_members(ctx):
        return empty
    coverage = sources.cohort_export_coverage(ctx.cohort.number)
    problems = []
    for member in coverage.members:
        if member.invoices == 0:
            problems.append(f"account {member.acct_id}: no invoice history exported")
        problems.extend(f"account {member.acct_id}: {m}" for m in member.missing)
    evidence = {
        "accounts": {str(m.acct_id): m.invoices for m in coverage.members},
    }
    return _problems(
        f"history exported, verified and PDFs copied for {len(coverage.members)} members",
        problems,
        evidence,
    )


# --- post-cycle ----------------------------------------------------------------------------


def cycle_problems(cohort: Cohort, *, today: date) -> tuple[list[str], dict[str, Any]]:
    """Why the cohort's cycle is not one full clean cycle yet (empty when it is)."""
    if cohort.cycle_start is None or cohort.cycle_end is None:
        return ["the cohort has no billing cycle under parallel run"], {}
    days = sources.reconciliation_days(cohort.number, cohort.cycle_start, cohort.cycle_end)
    evidence = {"runs": {d.isoformat(): r.run_id for d, r in days.items() if r.run_id}}
    problems = []
    if cohort.cycle_end >= today:
        problems.append(f"the cycle runs until {cohort.cycle_end}: it is not over")
    by_status: dict[str, list[date]] = defaultdict(list)
    for day, result in days.items():
        if result.status != "clean":
            by_status[result.status].append(day)
    for status, label in (
        ("missing", "no reconciliation run"),
        ("drift", "drift"),
        ("pending", "pending (not clean)"),
        ("error", "run error"),
        ("running", "run unfinished"),
    ):
        if by_status.get(status):
            problems.append(f"{label} on {_days(by_status[status])}")
    return problems, evidence


def _days(days: list[date]) -> str:
    shown = ", ".join(f"{d:%Y-%m-%d}" for d in days[:5])
    return shown + (f" (+{len(days) - 5} more)" if len(days) > 5 else "")


def check_zero_drift(ctx: CheckContext) -> Outcome:
    problems, evidence = cycle_problems(ctx.cohort, today=ctx.today)
    problems = [p for p in problems if "not over" not in p]
    drift = list(sources.open_drift(ctx.cohort.number))
    evidence["open_drift"] = [record.pk for record in drift]
    problems.extend(
        f"open drift {r.pk}: account {r.acct_id} {r.service_month:%Y-%m} delta {r.delta_minor:+d}"
        for r in drift
    )
    days = (ctx.cohort.cycle_end - ctx.cohort.cycle_start).days + 1 if ctx.cohort.cycle_end else 0
    return _problems(f"{days} days reconciled clean, no open drift", problems, evidence)


def check_invoices_delivered(ctx: CheckContext) -> Outcome:
    if empty := _no_members(ctx):
        return empty
    since = ctx.cohort.cycle_start
    deliveries = list(sources.deliveries_of(ctx.member_ids, since=since).exclude(state="not_ours"))
    evidence = {"deliveries": {str(d.pk): d.state for d in deliveries}}
    problems = [
        f"{d.number or d.stripe_invoice_id} (account {d.account.acct_id}): {d.get_state_display()}"
        for d in deliveries
        if d.state not in DELIVERED_STATES
    ]
    with_invoice = {d.account_id for d in deliveries}
    problems.extend(
        f"account {a.acct_id}: no invoice delivered in the cycle"
        for a in ctx.members
        if a.pk not in with_invoice
    )
    return _problems(f"{len(deliveries)} invoices delivered via Mailgun", problems, evidence)


def check_no_rollback_requests(ctx: CheckContext) -> Outcome:
    requests = CohortNote.objects.filter(
        cohort=ctx.cohort, round=ctx.cohort.round, kind=CohortNote.Kind.ROLLBACK_REQUEST
    ).select_related("by")
    problems = [
        f"note {n.pk} by {n.by.get_username()} on {n.at:%Y-%m-%d}: {n.text}" for n in requests
    ]
    return _problems(
        "no rollback request during the cycle", problems, {"notes": [n.pk for n in requests]}
    )


def check_payment_once(ctx: CheckContext) -> Outcome:
    if empty := _no_members(ctx):
        return empty
    start, end = ctx.cohort.cycle_start, ctx.cohort.cycle_end
    if start is None or end is None:
        return Outcome(False, "the cohort has no billing cycle under parallel run", {})
    created_gte = int(
        (datetime(start.year, start.month, start.day, tzinfo=UTC) - timedelta(days=1)).timestamp()
    )
    invoices: dict[int, list[dict]] = {}
    try:
        for account in ctx.members:
            if account.stripe_customer_id:
                invoices[account.acct_id] = gateways.paid_invoices_for_customer(
                    account.stripe_customer_id, created_gte=created_gte
                )
    except StripeApiError as exc:
        return Outcome(False, f"Stripe could not be read: {exc.message}", {})
    manual = sources.legacy_paid_invoice_months(i["id"] for rows in invoices.values() for i in rows)
    paid: dict[tuple[int, date], list[str]] = defaultdict(list)
    for acct_id, rows in invoices.items():
        for invoice in rows:
            for month in _service_months(invoice, manual):
                if start.replace(day=1) <= month <= end:
                    paid[(acct_id, month)].append(invoice["id"])
    evidence = {"paid_invoices": {str(a): [i["id"] for i in rows] for a, rows in invoices.items()}}
    problems = [
        f"account {acct_id} paid {len(ids)} times for {month:%Y-%m}: {', '.join(ids)}"
        for (acct_id, month), ids in sorted(paid.items())
        if len(ids) > 1
    ]
    return _problems(
        f"at most one payment per member and service month ({len(paid)} paid)", problems, evidence
    )


def _service_months(invoice: dict, manual: dict[str, date]) -> set[date]:
    if invoice["id"] in manual:
        return {manual[invoice["id"]].replace(day=1)}
    months = set()
    for line in (invoice.get("lines") or {}).get("data", []):
        period = line.get("period") or {}
        if period.get("start") is not None:
            months.add(datetime.fromtimestamp(period["start"], tz=UTC).date().replace(day=1))
    return months


def run_check(check: Callable[[CheckContext], Outcome], ctx: CheckContext) -> Outcome:
    """Run one check; a source that cannot be read is a failure that says so, never a pass."""
    try:
        return check(ctx)
    except StripeApiError as exc:
        return Outcome(False, f"Stripe could not be read: {exc.message}", {})
    except BillingError as exc:
        return Outcome(False, exc.message, {})
