"""A real-shaped subscription invoice groups into subscription, impressions and managed services.

Stripe copies the *subscription's* metadata onto each of its invoice lines, so a line says
nothing of its own kind: the kind comes from the price, as recorded in the catalog we created
(`import_legacy_catalog`). The invoice is made the way the product makes it: catalog import,
provisioning, usage through the outbox, a managed job sent as an invoice item, and a test clock
carried past the month end.
"""

from datetime import UTC, datetime, timedelta

import pytest
import stripe as stripe_lib
import time_machine

from billing_project.classifier import LineKind
from invoices.documents import invoice_document_build
from invoices.gateways import stripe_invoice_fetch
from metering.catalog_import import catalog_import
from metering.provisioning import subscriptions_provision
from metering.selectors import catalog_kinds
from metering.services import managed_job_create, managed_job_send
from metering.usage_outbox import usage_outbox_send
from metering.usage_services import UsageItem, usage_record_batch
from tests import factories
from tests.cohorts.conftest import plan_member
from tests.metering.conftest import both_databases

LADDER = [(1_000_000, "2.50"), (None, "1.10")]
DEC_20 = datetime(2025, 12, 20, tzinfo=UTC)
JAN_15 = datetime(2026, 1, 15, 12, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


def _advance(clock_id: str, traveller, moment: datetime) -> None:
    traveller.move_to(moment)
    stripe_lib.test_helpers.TestClock.advance(clock_id, frozen_time=int(moment.timestamp()))


@pytest.fixture
def cycle_invoice(stripe):
    with time_machine.travel(DEC_20, tick=False) as traveller:
        clock = stripe_lib.test_helpers.TestClock.create(frozen_time=int(DEC_20.timestamp())).id
        cohort = factories.CohortFactory(
            number=2, ready=True, cycle_start=JAN_15.date().replace(day=1)
        )
        account = plan_member(
            stripe, cohort, 811, clock=clock, sub_rates=("249.00",), tiers={"ST": LADDER}
        )
        catalog_import(cohort=2)
        report = subscriptions_provision(cohort=2)
        assert not report.errors, report.errors
        _advance(clock, traveller, JAN_15)
        usage_record_batch(items=[UsageItem(0, 811, JAN_15.date(), "ST", 1_200_000)])
        assert usage_outbox_send(workers=1).sent == 1
        job = managed_job_create(
            account=account,
            description="Creative production: holiday campaign",
            service_month=JAN_15.date(),
            amount_minor=35_000,
        )
        assert managed_job_send(job_id=job.pk).stripe_invoice_item_id
        _advance(clock, traveller, FEB_1 + timedelta(hours=2))
        invoices = stripe_lib.Invoice.list(customer=account.stripe_customer_id)
        (invoice,) = [i for i in invoices if i.period_end == int(FEB_1.timestamp())]
        assert invoice.status != "draft"
        return stripe_invoice_fetch(invoice.id)


@both_databases
def test_subscription_lines_are_kinded_by_their_price_not_by_the_subscription_metadata(
    cycle_invoice,
):
    invoice, lines = cycle_invoice
    document = invoice_document_build(invoice=invoice, lines=lines, kinds=catalog_kinds())
    by_kind = {line.kind: line for line in document.lines}
    assert set(by_kind) == {LineKind.FLAT, LineKind.ST, LineKind.MANAGED}
    assert by_kind[LineKind.FLAT].amount_minor == 24_900
    impressions = by_kind[LineKind.ST]
    assert impressions.quantity == 1_200_000
    assert impressions.unit_amount_decimal is not None  # quantity x rate on the PDF
    assert impressions.amount_minor == 132_000  # volume tier 2 for all: 1.2 M x $1.10 / 1,000
    assert by_kind[LineKind.MANAGED].amount_minor == 35_000


@both_databases
def test_without_the_catalog_a_subscription_line_is_other_never_guessed(cycle_invoice):
    invoice, lines = cycle_invoice
    document = invoice_document_build(invoice=invoice, lines=lines)
    kinds = {line.kind for line in document.lines}
    assert LineKind.MANAGED in kinds  # the invoice item carries its own metadata
    assert LineKind.FLAT not in kinds and LineKind.ST not in kinds
