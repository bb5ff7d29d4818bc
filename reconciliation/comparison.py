"""The comparison itself, without I/O: one account's service month, Stripe against legacy.

Stripe's side is the lines of our invoices (our subscriptions, our invoice items) whose
service period starts in the month, whatever invoice carries them: a cycle invoice bills the
new month's flat fee in advance and the ended month's usage in arrears. What the customer owes
is less than the lines: a line's `discount_amounts` (line coupons and its share of invoice
coupons; a remainder of `total_discount_amounts` the lines do not carry counts in the invoice's
first service month) and the credit notes issued against the invoice (a credited line counts in
its line's month, a custom credit line in the invoice's first service month; void ones do
not count) are subtracted, and named as `discount` and `credit_note` in the per-kind totals.
Amounts are integer minor units; the tolerance on the account's month total is zero (kinds
whose totals differ are named, to point at the cause). A side missing before the deadline is
pending; after it, drift, even when the other side is zero.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from billing_project.classifier import LineKind, classify_stripe_line, totals_by_kind
from invoices.ownership import invoice_not_ours_reason
from metering.models import BillingAccount

from .models import DriftReason, ResultStatus
from .periods import month_of_timestamp

BILLED_STATUSES = frozenset({"open", "paid", "uncollectible"})
KINDS = tuple(kind.value for kind in LineKind)
NO_AMOUNTS = totals_by_kind([])


@dataclass
class MonthSide:
    """One side's month for one account: total, per-kind totals and the documents behind it."""

    currency: str
    total_minor: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: dict(NO_AMOUNTS))
    documents: list[str] = field(default_factory=list)


@dataclass
class Compared:
    account: BillingAccount
    cohort_number: int | None
    currency: str
    status: str
    reason: str
    stripe_total_minor: int
    legacy_total_minor: int
    delta_minor: int
    stripe_by_kind: dict[str, int]
    legacy_by_kind: dict[str, int]
    drift_kinds: list[str]
    stripe_invoice_ids: list[str]
    legacy_inv_uuids: list[str]


def stripe_month_sides(
    *,
    invoices: Iterable[Mapping[str, Any]],
    accounts_by_customer: Mapping[str, BillingAccount],
    month: date,
    prices: Mapping[str, Mapping[str, Any]] | None = None,
    products: Mapping[str, Mapping[str, Any]] | None = None,
    kinds: Mapping[str, str] | None = None,
    credit_notes: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
) -> dict[int, MonthSide]:
    """Per acct_id, the month's Stripe side from billed invoices that are ours."""
    sides: dict[int, MonthSide] = {}
    for invoice in invoices:
        if invoice.get("status") not in BILLED_STATUSES:
            continue
        account = accounts_by_customer.get(invoice.get("customer") or "")
        if account is None:
            continue
        lines = invoice["lines"]["data"]
        if invoice_not_ours_reason(invoice=invoice, lines=lines, account=account):
            continue
        amounts = _invoice_month_amounts(
            invoice,
            lines,
            (credit_notes or {}).get(invoice["id"], ()),
            lambda line: classify_stripe_line(line, prices=prices, products=products, kinds=kinds),
        ).get(month)
        if not amounts:
            continue
        side = sides.setdefault(account.acct_id, MonthSide(currency=invoice["currency"]))
        for kind, amount in amounts.items():
            side.by_kind[kind] += amount
            side.total_minor += amount
        side.documents.append(invoice["id"])
    return sides


def _invoice_month_amounts(
    invoice: Mapping[str, Any],
    lines: list[Mapping[str, Any]],
    credit_notes: Iterable[Mapping[str, Any]],
    classify,
) -> dict[date, dict[str, int]]:
    """Service month -> kind -> signed minor units, for one invoice."""
    months: dict[date, dict[str, int]] = {}
    month_of_line: dict[str, date] = {}

    def add(month: date, kind: str, amount: int) -> None:
        bucket = months.setdefault(month, {})
        bucket[kind] = bucket.get(kind, 0) + amount

    line_discounts = 0
    for line in lines:
        month = month_of_timestamp(line["period"]["start"])
        month_of_line[line["id"]] = month
        add(month, classify(line).value, line["amount"])
        discount = sum(d["amount"] for d in line.get("discount_amounts") or [])
        if discount:
            add(month, LineKind.DISCOUNT.value, -discount)
            line_discounts += discount
    if not months:
        return months
    first = min(months)
    total_discounts = sum(d["amount"] for d in invoice.get("total_discount_amounts") or [])
    if total_discounts != line_discounts:
        add(first, LineKind.DISCOUNT.value, line_discounts - total_discounts)
    for note in credit_notes:
        if note.get("status") == "void":
            continue
        for credited in (note.get("lines") or {}).get("data") or []:
            month = month_of_line.get(credited.get("invoice_line_item") or "", first)
            net = credited["amount"] - (credited.get("discount_amount") or 0)
            add(month, LineKind.CREDIT_NOTE.value, -net)
    return months


def _drift_kinds(stripe: Mapping[str, int], legacy: Mapping[str, int]) -> list[str]:
    return [kind for kind in KINDS if stripe.get(kind, 0) != legacy.get(kind, 0)]


def compare_account(
    *,
    account: BillingAccount,
    cohort_number: int | None,
    stripe: MonthSide | None,
    legacy: MonthSide | None,
    past_deadline: bool,
    legacy_expected: bool = True,
) -> Compared:
    """One account's verdict: clean, drift (with the reason and kinds), or pending.

    A migrated account (`legacy_expected` False: billed by Stripe alone) has no legacy
    invoice to match; its Stripe side is still required, and a legacy invoice that does
    appear is compared (both systems billing is what monitoring is for)."""
    empty = NO_AMOUNTS
    currency = (legacy or stripe).currency if (legacy or stripe) else "usd"
    stripe_total = stripe.total_minor if stripe else 0
    legacy_total = legacy.total_minor if legacy else 0
    stripe_by_kind = stripe.by_kind if stripe else empty
    legacy_by_kind = legacy.by_kind if legacy else empty
    reason = DriftReason.NONE
    if stripe is not None and legacy is None and not legacy_expected:
        reason, status = DriftReason.STRIPE_ONLY, ResultStatus.CLEAN
    elif stripe is None or legacy is None:
        reason = {
            (True, True): DriftReason.MISSING_BOTH,
            (True, False): DriftReason.MISSING_STRIPE,
            (False, True): DriftReason.MISSING_LEGACY,
        }[(stripe is None, legacy is None)]
        status = ResultStatus.DRIFT if past_deadline else ResultStatus.PENDING
    elif stripe.currency != legacy.currency:
        reason, status = DriftReason.CURRENCY_DIFFERS, ResultStatus.DRIFT
    elif stripe_total != legacy_total:
        reason, status = DriftReason.AMOUNTS_DIFFER, ResultStatus.DRIFT
    else:
        status = ResultStatus.CLEAN
    return Compared(
        account=account,
        cohort_number=cohort_number,
        currency=currency,
        status=status,
        reason=reason,
        stripe_total_minor=stripe_total,
        legacy_total_minor=legacy_total,
        delta_minor=stripe_total - legacy_total,
        stripe_by_kind=dict(stripe_by_kind),
        legacy_by_kind=dict(legacy_by_kind),
        drift_kinds=_drift_kinds(stripe_by_kind, legacy_by_kind),
        stripe_invoice_ids=sorted(stripe.documents) if stripe else [],
        legacy_inv_uuids=sorted(legacy.documents) if legacy else [],
    )
