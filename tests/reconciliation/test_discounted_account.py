"""A discounted account with a credit note, through the daily reconciliation against the
Stripe-compatible server: exact to the cent against legacy lines carrying the same reductions."""

import pytest
import stripe

from billing_project.classifier import LineKind
from reconciliation.models import ReconciliationResult
from reconciliation.services import reconcile_run

from .conftest import AFTER_DEADLINE, feb_lines, legacy_invoice, member, seed_customer, ts

pytestmark = pytest.mark.django_db(databases=["default", "legacy"])


def discounted_invoice(server, account):
    """February's flat fee and impressions with a 10 % coupon, paid, then 1,000 of the
    impressions credited."""
    seed_customer(server, account, at=ts(2026, 3, 1, 2))
    for line in feb_lines(49_900, 4_000):
        stripe.InvoiceItem.create(
            customer=account.stripe_customer_id,
            amount=line.amount,
            currency="usd",
            description=f"{line.kind} charge",
            period={"start": line.start, "end": line.end},
            metadata={"kind": line.kind, "acct_id": str(account.acct_id)},
        )
    coupon = stripe.Coupon.create(percent_off=10, duration="once")
    invoice = stripe.Invoice.create(
        customer=account.stripe_customer_id,
        pending_invoice_items_behavior="include",
        collection_method="send_invoice",
        days_until_due=30,
        discounts=[{"coupon": coupon.id}],
    )
    stripe.Invoice.finalize_invoice(invoice.id)
    paid = stripe.Invoice.pay(invoice.id, paid_out_of_band=True)
    st_line = next(line for line in paid.lines.data if line.metadata["kind"] == "ST")
    note = stripe.CreditNote.create(
        invoice=paid.id,
        lines=[{"type": "invoice_line_item", "invoice_line_item": st_line.id, "amount": 1_000}],
    )
    return stripe.Invoice.retrieve(paid.id), note


@pytest.fixture
def discounted(server, cohort):
    account = member(cohort, 5701)
    invoice, note = discounted_invoice(server, account)
    return account, invoice, note


def test_a_discounted_account_with_a_credit_note_reconciles_exactly(discounted):
    _, invoice, note = discounted
    assert invoice.total == 53_900 - 5_390
    credited = sum(line.amount - line.discount_amount for line in note.lines.data)
    legacy_invoice(
        5701,
        {
            LineKind.FLAT: 49_900,
            LineKind.ST: 4_000,
            LineKind.DISCOUNT: -5_390,
            LineKind.CREDIT_NOTE: -credited,
        },
    )
    run = reconcile_run(run_date=AFTER_DEADLINE).run
    result = ReconciliationResult.objects.get(run=run, acct_id=5701)
    assert (result.status, result.delta_minor) == ("clean", 0), result.reason
    assert result.stripe_by_kind[LineKind.DISCOUNT] == -5_390
    assert result.stripe_by_kind[LineKind.CREDIT_NOTE] == -credited
    assert result.stripe_total_minor == 53_900 - 5_390 - credited


def test_legacy_without_the_credit_note_is_drift_named_credit_note(discounted):
    legacy_invoice(5701, {LineKind.FLAT: 49_900, LineKind.ST: 4_000, LineKind.DISCOUNT: -5_390})
    run = reconcile_run(run_date=AFTER_DEADLINE).run
    result = ReconciliationResult.objects.get(run=run, acct_id=5701)
    assert result.status == "drift"
    assert result.drift_kinds == [LineKind.CREDIT_NOTE]
