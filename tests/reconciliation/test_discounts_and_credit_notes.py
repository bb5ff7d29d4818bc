"""Discounts and credit notes on the Stripe side, built from Stripe's own example objects
(`fixtures3.json`): a coupon on the flat fee, an invoice-level coupon, and a credit note with a
credited line and a custom line. What the customer owes is compared, to the cent, with legacy
lines that carry the same reductions."""

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from billing_project.classifier import LineKind
from metering.models import BillingAccount
from reconciliation.comparison import MonthSide, compare_account, stripe_month_sides
from reconciliation.models import ResultStatus
from tests.factories import BillingAccountFactory

pytestmark = pytest.mark.django_db

FIXTURES = json.loads((Path(__file__).parents[1] / "stripe_server" / "fixtures3.json").read_text())[
    "resources"
]
JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


def ts(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def line(line_id: str, kind: str, amount: int, start: date, end: date, discounts=()):
    shaped = copy.deepcopy(FIXTURES["line_item"])
    shaped.update(
        id=line_id,
        amount=amount,
        metadata={"kind": kind, "acct_id": "7301"},
        period={"start": ts(start), "end": ts(end)},
        discount_amounts=[{"amount": a, "discount": "di_test"} for a in discounts],
        parent={"type": "invoice_item_details", "invoice_item_details": {"invoice_item": "ii_1"}},
    )
    return shaped


@pytest.fixture
def account():
    return BillingAccountFactory(
        acct_id=7301,
        stripe_customer_id="cus_discounted",
        billing_owner=BillingAccount.BillingOwner.PARALLEL,
    )


@pytest.fixture
def invoice():
    shaped = copy.deepcopy(FIXTURES["invoice"])
    lines = [
        # February's flat fee in advance, with a 10 % coupon on it.
        line("il_flat", "flat", 50_000, FEB, date(2026, 3, 1), discounts=[5_000]),
        # January's impressions in arrears, and its share (2 %) of an invoice-level coupon.
        line("il_st", "ST", 10_000, JAN, FEB, discounts=[200]),
    ]
    shaped.update(
        id="in_discounted",
        customer="cus_discounted",
        status="paid",
        currency="usd",
        lines={"object": "list", "data": lines, "has_more": False, "url": "/v1/invoices/x/lines"},
        # One more invoice-level cent the lines do not carry (Stripe's rounding of the split).
        total_discount_amounts=[{"amount": 5_201, "discount": "di_test"}],
        post_payment_credit_notes_amount=1_500,
        billing_reason="subscription_cycle",
    )
    return shaped


@pytest.fixture
def credit_note():
    note = copy.deepcopy(FIXTURES["credit_note"])
    credited, custom = copy.deepcopy(note["lines"]["data"])
    credited.update(invoice_line_item="il_st", amount=1_200, discount_amount=200)
    custom.update(amount=500, discount_amount=0)
    note.update(id="cn_1", invoice="in_discounted", status="issued")
    note["lines"]["data"] = [credited, custom]
    return note


def side(account, invoice, credit_notes, month):
    sides = stripe_month_sides(
        invoices=[invoice],
        accounts_by_customer={account.stripe_customer_id: account},
        month=month,
        credit_notes={invoice["id"]: credit_notes},
    )
    return sides[account.acct_id]


def legacy(total: int, **by_kind: int) -> MonthSide:
    amounts = MonthSide(currency="usd", total_minor=total, documents=["legacy-inv"])
    for kind, amount in by_kind.items():
        amounts.by_kind[kind] = amount
    return amounts


def test_discounts_and_credit_notes_are_subtracted_in_the_month_of_what_they_reduce(
    account, invoice, credit_note
):
    january = side(account, invoice, [credit_note], JAN)
    # 10,000 impressions - 200 coupon share - 1 uncarried invoice-level cent
    # - (1,200 - 200) credited on the ST line - 500 custom credit.
    assert january.total_minor == 10_000 - 200 - 1 - 1_000 - 500 == 8_299
    assert january.by_kind[LineKind.ST] == 10_000
    assert january.by_kind[LineKind.DISCOUNT] == -201
    assert january.by_kind[LineKind.CREDIT_NOTE] == -1_500
    february = side(account, invoice, [credit_note], FEB)
    assert february.total_minor == 45_000
    assert february.by_kind[LineKind.DISCOUNT] == -5_000
    assert february.by_kind[LineKind.CREDIT_NOTE] == 0


def test_legacy_lines_with_the_same_reductions_reconcile_clean_to_the_cent(
    account, invoice, credit_note
):
    same = legacy(8_299, ST=10_000, discount=-201, credit_note=-1_500)
    result = compare_account(
        account=account,
        cohort_number=None,
        stripe=side(account, invoice, [credit_note], JAN),
        legacy=same,
        past_deadline=True,
    )
    assert (result.status, result.delta_minor, result.drift_kinds) == (ResultStatus.CLEAN, 0, [])


def test_a_credit_note_the_legacy_side_lacks_is_drift_named_by_its_kind(
    account, invoice, credit_note
):
    without_credit = legacy(9_799, ST=10_000, discount=-201)
    result = compare_account(
        account=account,
        cohort_number=None,
        stripe=side(account, invoice, [credit_note], JAN),
        legacy=without_credit,
        past_deadline=True,
    )
    assert result.status == ResultStatus.DRIFT
    assert result.delta_minor == -1_500
    assert result.drift_kinds == [LineKind.CREDIT_NOTE.value]


def test_a_void_credit_note_gives_nothing_back(account, invoice, credit_note):
    credit_note["status"] = "void"
    assert side(account, invoice, [credit_note], JAN).total_minor == 10_000 - 201
