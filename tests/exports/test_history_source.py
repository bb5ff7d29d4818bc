"""The PostgreSQL COPY path and the portable ORM path write the same bytes and counts."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing_project.money import MoneyError
from exports.history_source import history_month_csv
from tests.factories import LegacyAccountFactory, LegacyInvoiceFactory, LegacyInvoiceLineFactory

from .conftest import LEGACY_DB

pytestmark = LEGACY_DB
MONTH = date(2026, 1, 1)


def _both(**kwargs):
    copied, ormed = io.BytesIO(), io.BytesIO()
    copy_stats = history_month_csv(month=MONTH, sink=copied, **kwargs)
    orm_stats = history_month_csv(month=MONTH, sink=ormed, via_orm=True, **kwargs)
    return copied.getvalue(), copy_stats, ormed.getvalue(), orm_stats


def test_copy_and_orm_paths_agree_byte_for_byte_on_awkward_values(legacy_history):
    account = LegacyAccountFactory(acct_id=77)
    awkward = LegacyInvoiceFactory(
        inv_uuid="00000000-0000-0000-0000-0000000000aa",
        account=account,
        service_month=MONTH,
        total=Decimal("12.34"),
        stripe_invoice_id=None,
        payment_customer_id="",
        created=datetime(2026, 2, 1, 9, 30, 15, tzinfo=UTC),
    )
    LegacyInvoiceLineFactory(
        invoice=awkward,
        line_kind="other",
        description='Setup, "rush"\r\nfee',
        amount=Decimal("12.34"),
    )
    LegacyInvoiceFactory(
        inv_uuid="00000000-0000-0000-0000-0000000000ab",
        account=account,
        service_month=MONTH,
        currency="jpy",
        total=Decimal("1500"),
    )

    copied, copy_stats, ormed, orm_stats = _both()

    assert copied == ormed
    assert copy_stats == orm_stats
    text = copied.decode()
    assert '"Setup, ""rush""\r\nfee"' in text
    assert "00000000-0000-0000-0000-0000000000ab,77,2026-01-01," in text
    jpy_row = next(
        line
        for line in text.splitlines()
        if line.startswith("00000000-0000-0000-0000-0000000000ab")
    )
    assert ",jpy,1500," in jpy_row and jpy_row.endswith(",,,,,,")  # no lines: empty line fields
    assert copy_stats.totals_minor["jpy"] == 1500
    assert copy_stats.first_invoice == "00000000-0000-0000-0000-0000000000aa"


def test_account_subset_agrees_too(legacy_history):
    copied, copy_stats, ormed, orm_stats = _both(acct_ids=[1003, 1001])

    assert copied == ormed and copy_stats == orm_stats
    assert copy_stats.invoices == 2


def test_an_amount_finer_than_the_minor_unit_is_refused_by_both_paths(legacy_history):
    LegacyInvoiceFactory(
        account=LegacyAccountFactory(acct_id=78),
        service_month=MONTH,
        currency="jpy",
        total=Decimal("1.50"),
    )

    with pytest.raises(MoneyError, match="not a whole number of minor units"):
        history_month_csv(month=MONTH, sink=io.BytesIO())
    with pytest.raises(MoneyError, match="not a whole number of minor units"):
        history_month_csv(month=MONTH, sink=io.BytesIO(), via_orm=True)
