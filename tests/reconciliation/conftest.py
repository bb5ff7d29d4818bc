"""Both sides of a reconciliation, built through their real protocols: legacy rows in the
legacy PostgreSQL database, Stripe invoices on the Stripe-compatible server (a test clock
puts each invoice's creation where a real billing cycle would)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import stripe

from billing_project.classifier import LineKind
from billing_project.money import minor_to_major
from reconciliation.legacy import LegacyAccount
from tests.factories import (
    BillingAccountFactory,
    CohortFactory,
    CohortMembershipFactory,
    LegacyAccountFactory,
    LegacyInvoiceFactory,
    LegacyInvoiceLineFactory,
)

FEB = date(2026, 2, 1)
AFTER_DEADLINE = date(2026, 3, 15)  # service month Feb, default deadline Mar 11
BEFORE_DEADLINE = date(2026, 3, 5)


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.fixture
def server(stripe_server):
    stripe_server.reset()
    stripe_server.webhooks.auto = False
    return stripe_server


@pytest.fixture
def cohort():
    return CohortFactory(number=2, parallel_run=True)


def member(cohort, acct_id: int, **extra):
    """A parallel-run account in `cohort`, with its open membership."""
    account = BillingAccountFactory(acct_id=acct_id, cohort=cohort, parallel=True, **extra)
    CohortMembershipFactory(cohort=cohort, account=account)
    return account


def legacy_invoice(acct_id: int, lines: dict[str, int], *, month: date = FEB):
    """A legacy invoice for the month with one line per kind (amounts in cents); a second
    month of the same account reuses its legacy account."""
    account = LegacyAccount.objects.filter(acct_id=acct_id).first() or LegacyAccountFactory(
        acct_id=acct_id
    )
    invoice = LegacyInvoiceFactory(
        account=account,
        service_month=month,
        total=minor_to_major(sum(lines.values()), "usd"),
    )
    for kind, amount in lines.items():
        LegacyInvoiceLineFactory(
            invoice=invoice,
            line_kind=kind,
            rate=Decimal(0),
            amount=minor_to_major(amount, "usd"),
        )
    return invoice


@dataclass
class Line:
    kind: str
    amount: int
    start: int
    end: int


def seed_customer(server, account, *, at: int) -> str:
    """The account's Stripe customer on its own test clock frozen at `at`."""
    clock = stripe.test_helpers.TestClock.create(frozen_time=at)
    status, body, _ = server.handle(
        "POST",
        "/_harness/customers",
        "",
        f"id={account.stripe_customer_id}&test_clock={clock.id}",
        {"Authorization": f"Bearer {stripe.api_key or 'sk_test_x'}"},
    )
    assert status == 200, body
    return clock.id


def stripe_invoice(server, account, lines: Iterable[Line], *, created: int, ours: bool = True):
    """A finalized, paid invoice created at `created` carrying invoice items (ours carry
    `metadata.acct_id` and `metadata.kind`, as every object we create does)."""
    seed_customer(server, account, at=created)
    for line in lines:
        metadata = {"kind": line.kind, "acct_id": str(account.acct_id)} if ours else {}
        stripe.InvoiceItem.create(
            customer=account.stripe_customer_id,
            amount=line.amount,
            currency="usd",
            description=f"{line.kind} charge",
            period={"start": line.start, "end": line.end},
            metadata=metadata,
        )
    invoice = stripe.Invoice.create(
        customer=account.stripe_customer_id,
        pending_invoice_items_behavior="include",
        collection_method="send_invoice",
        days_until_due=30,
    )
    stripe.Invoice.finalize_invoice(invoice.id)
    return stripe.Invoice.pay(invoice.id, paid_out_of_band=True)


def feb_lines(flat: int, st: int = 0) -> list[Line]:
    """Flat fee for Feb (billed in advance) and Feb ST usage (billed in arrears)."""
    lines = [Line(LineKind.FLAT, flat, ts(2026, 2, 1), ts(2026, 3, 1))]
    if st:
        lines.append(Line(LineKind.ST, st, ts(2026, 2, 1), ts(2026, 3, 1)))
    return lines


@pytest.fixture
def legacy_truncated():
    """Transactional tests commit legacy rows that Django's flush does not know (the legacy
    tables are unmanaged): empty them before and after."""
    from django.db import connections

    from reconciliation.legacy import LEGACY_ALIAS

    def truncate() -> None:
        with connections[LEGACY_ALIAS].cursor() as cursor:
            cursor.execute(
                "TRUNCATE billing_invoice_line, billing_invoice, managed_service_job, "
                "account_plan_usage, account_plan_sub, account"
            )

    truncate()
    yield
    truncate()


def month_lines(month: date, flat: int, st: int = 0) -> list[Line]:
    """`feb_lines` for any service month."""
    from reconciliation.periods import next_month

    start, end = (ts(d.year, d.month, 1) for d in (month, next_month(month)))
    lines = [Line(LineKind.FLAT, flat, start, end)]
    if st:
        lines.append(Line(LineKind.ST, st, start, end))
    return lines
