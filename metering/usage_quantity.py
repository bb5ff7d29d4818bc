"""Quantity check (read-only): our usage ledger against Stripe's meter event summaries, per
account, usage type and month. Used before invoices finalize and by the cohort checklist.

Per line: `ledger` (sum of the month's current quantities), `stripe` (the meter's aggregated
value for the customer over the month), and our outbox by state. The status says what to do:
- `match`: Stripe holds exactly the ledger.
- `awaiting`: Stripe holds exactly what we sent; the rest is still pending, failed or too late
  in our outbox (see those columns).
- `settling`: Stripe differs from what we sent, but something was sent less than
  `SETTLE_SECONDS` ago: meter event summaries lag behind the events they sum, so this is not
  settled yet; check again later.
- `mismatch`: Stripe differs from what we sent, and has had time to settle — investigate
  before the invoice finalizes.
- `no_customer` / `no_meter`: the account has no Stripe customer / the type has no meter.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from .meter_gateway import meter_ids_by_event_name, meter_usage_total
from .models import BillingAccount
from .usage_selectors import usage_month_totals
from .usage_types import UsageType, meter_event_name

# How long Stripe's meter event summaries may lag behind the events (they are aggregated
# asynchronously; Stripe documents the lag as minutes).
SETTLE_SECONDS = 15 * 60


class CheckStatus:
    MATCH = "match"
    AWAITING = "awaiting"
    SETTLING = "settling"
    MISMATCH = "mismatch"
    NO_CUSTOMER = "no_customer"
    NO_METER = "no_meter"


@dataclass(frozen=True)
class QuantityLine:
    acct_id: int
    usage_type: str
    month: date
    ledger: int
    stripe: int | None
    sent: int
    pending: int
    failed: int
    too_late: int
    status: str
    customer_id: str = ""
    meter_id: str = ""

    @property
    def difference(self) -> int | None:
        return None if self.stripe is None else self.ledger - self.stripe


def month_bounds(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


def usage_quantity_check(
    *,
    month: date,
    accounts: Iterable[BillingAccount],
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> list[QuantityLine]:
    """One line per account and usage type for the month. Reads only (ours and Stripe's)."""
    now = now or timezone.now()
    settled_before = now - timedelta(seconds=SETTLE_SECONDS)
    accounts = list(accounts)
    start, end = month_bounds(month)
    totals = usage_month_totals(account_ids=[a.pk for a in accounts], start=start, end=end)
    meters = meter_ids_by_event_name()
    begin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    finish = datetime.combine(end, datetime.min.time(), tzinfo=UTC)
    lines = []
    for done, account in enumerate(accounts, start=1):
        for usage_type in UsageType.values:
            ours = totals.get((account.pk, usage_type), {})
            ledger, sent = ours.get("ledger", 0), ours.get("sent", 0)
            meter_id = meters.get(meter_event_name(usage_type), "")
            stripe_total = None
            if not account.stripe_customer_id:
                status = CheckStatus.NO_CUSTOMER
            elif not meter_id:
                status = CheckStatus.NO_METER
            else:
                stripe_total = meter_usage_total(
                    meter_id=meter_id,
                    customer_id=account.stripe_customer_id,
                    start=begin,
                    end=finish,
                )
                if stripe_total == ledger:
                    status = CheckStatus.MATCH
                elif stripe_total == sent:
                    status = CheckStatus.AWAITING
                elif (ours.get("last_sent_at") or settled_before) > settled_before:
                    status = CheckStatus.SETTLING
                else:
                    status = CheckStatus.MISMATCH
            lines.append(
                QuantityLine(
                    acct_id=account.acct_id,
                    usage_type=usage_type,
                    month=start,
                    ledger=ledger,
                    stripe=stripe_total,
                    sent=sent,
                    pending=ours.get("pending", 0),
                    failed=ours.get("failed", 0),
                    too_late=ours.get("too_late", 0),
                    status=status,
                    customer_id=account.stripe_customer_id or "",
                    meter_id=meter_id,
                )
            )
        if progress:
            progress(done, len(accounts))
    return lines
