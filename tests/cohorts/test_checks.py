"""Each automated check fails when what it verifies is missing, and stores the ids it read."""

from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
import stripe as stripe_lib
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.mail import EmailMessage, get_connection
from django.core.management import call_command
from djstripe.models import Event

from billing_project.stripe_webhook import webhook_endpoint_url
from cohorts import checks
from cohorts.checklist_models import AuditEntry, ChecklistResult, CohortNote
from cohorts.services import cohort_checks_run
from exports.models import HistoryMonth, LegacyPdfCopy
from invoices.models import InvoiceDelivery
from metering.catalog_import import catalog_import
from metering.provisioning import subscriptions_provision
from reconciliation.legacy import LegacyPlanSub, LegacyPlanUsage
from tests import factories
from tests.invoices.scenarios import billed_customer, deliver, finalized_event

from .conftest import (
    AFTER_CYCLE,
    CYCLE_END,
    CYCLE_START,
    both_databases,
    clean_cycle,
    cohort_with_members,
    plan_member,
)
from .factories import DriftRecordFactory

LADDER = [(1_000_000, "2.50"), (None, "1.10")]


def _run(cohort, check, today=AFTER_CYCLE) -> checks.Outcome:
    return checks.run_check(check, checks.CheckContext(cohort, today=today))


# --- catalog: subscriptions, flat price, metered tiers (metering's catalog_verify) ---------


@pytest.fixture
def priced_cohort(stripe):
    frozen = int(datetime(2025, 12, 20, tzinfo=UTC).timestamp())
    clock = stripe_lib.test_helpers.TestClock.create(frozen_time=frozen).id
    cohort = factories.CohortFactory(number=2, ready=True, cycle_start=CYCLE_START)
    plan_member(stripe, cohort, 811, clock=clock, sub_rates=("249.00",), tiers={"ST": LADDER})
    plan_member(stripe, cohort, 812, clock=clock, sub_rates=("149.00",))
    catalog_import(cohort=2)
    return cohort


@both_databases
def test_subscription_check_fails_until_each_member_has_one(priced_cohort):
    before = _run(priced_cohort, checks.check_subscriptions)
    assert not before.passed
    assert "account 811: no subscription provisioned" in before.summary
    assert "account 812: no subscription provisioned" in before.summary
    subscriptions_provision(cohort=2)
    after = _run(priced_cohort, checks.check_subscriptions)
    assert after.passed, after.summary
    assert len(after.evidence["subscriptions"]) == 2
    assert all(s.startswith("sub_") for s in after.evidence["subscriptions"])
    assert _run(priced_cohort, checks.check_flat_price).passed
    metered = _run(priced_cohort, checks.check_metered_prices)
    assert metered.passed and metered.evidence["prices"]


@both_databases
def test_flat_price_check_fails_when_sub_rate_differs(priced_cohort):
    subscriptions_provision(cohort=2)
    LegacyPlanSub.objects.filter(account_id=812).update(sub_rate=Decimal("159.00"))
    outcome = _run(priced_cohort, checks.check_flat_price)
    assert not outcome.passed
    assert "account 812" in outcome.summary and "flat" in outcome.summary
    assert _run(priced_cohort, checks.check_subscriptions).passed


@both_databases
def test_metered_check_fails_when_a_tier_differs(priced_cohort):
    subscriptions_provision(cohort=2)
    LegacyPlanUsage.objects.filter(account_id=811, usage_max=None).update(
        usage_rate=Decimal("1.05")
    )
    outcome = _run(priced_cohort, checks.check_metered_prices)
    assert not outcome.passed
    assert "account 811" in outcome.summary and "ST price" in outcome.summary
    assert _run(priced_cohort, checks.check_flat_price).passed


@both_databases
def test_usage_check_fails_for_a_metered_member_without_usage_in_stripe(priced_cohort):
    outcome = _run(priced_cohort, checks.check_usage_signal)
    assert not outcome.passed
    assert "account 811: no usage recorded" in outcome.summary
    assert "812" not in outcome.summary  # flat-only: nothing to meter


@both_databases
def test_usage_check_passes_for_flat_only_cohorts():
    cohort = cohort_with_members(1)
    outcome = _run(cohort, checks.check_usage_signal)
    assert outcome.passed and "flat plans only" in outcome.summary


# --- webhook trial, PDFs, Mailgun ---------------------------------------------------------


def _finalized_event(event_id: str, customer: str, invoice_id: str, *, livemode=False) -> Event:
    return Event.objects.create(
        id=event_id,
        type="invoice.finalized",
        livemode=livemode,
        data={"object": {"id": invoice_id, "object": "invoice", "customer": customer}},
        created=datetime(2026, 1, 2, tzinfo=UTC),
    )


@pytest.mark.django_db
def test_webhook_trial_needs_a_processed_test_mode_finalized_for_a_member():
    cohort = cohort_with_members(1, members=1)
    member = cohort.accounts.get()
    assert "no test-mode invoice.finalized" in _run(cohort, checks.check_webhook_trial).summary
    _finalized_event("evt_live1", member.stripe_customer_id, "in_live1", livemode=True)
    _finalized_event("evt_other", "cus_someoneelse", "in_other")
    assert not _run(cohort, checks.check_webhook_trial).passed
    _finalized_event("evt_trial1", member.stripe_customer_id, "in_trial1")
    factories.InvoiceDeliveryFactory(stripe_invoice_id="in_trial1", account=member, state="failed")
    failed = _run(cohort, checks.check_webhook_trial)
    assert not failed.passed and "none processed" in failed.summary
    factories.InvoiceDeliveryFactory(stripe_invoice_id="in_trial2", account=member, sent=True)
    _finalized_event("evt_trial2", member.stripe_customer_id, "in_trial2")
    passed = _run(cohort, checks.check_webhook_trial)
    assert passed.passed and "evt_trial2" in passed.summary
    assert set(passed.evidence["events"]) == {"evt_trial1", "evt_trial2"}


@both_databases
def test_pdf_check_needs_stored_pdfs_for_representative_members(s3_bucket):
    cohort = cohort_with_members(1, members=2)
    first, second = cohort.accounts.order_by("acct_id")
    assert (
        "PDFs stored for 0 member(s), 2 wanted" in _run(cohort, checks.check_pdf_rendered).summary
    )
    one = factories.InvoiceDeliveryFactory(
        account=first, sent=True, pdf_key=f"{first.acct_id}/a.pdf"
    )
    two = factories.InvoiceDeliveryFactory(
        account=second, sent=True, pdf_key=f"{second.acct_id}/b.pdf"
    )
    storage = storages["default"]
    storage.save(one.pdf_key, ContentFile(b"%PDF-1.4 one"))
    outcome = _run(cohort, checks.check_pdf_rendered)
    assert not outcome.passed
    assert f"delivery {two.pk}: {two.pdf_key} is not in storage" in outcome.summary
    storage.save(two.pdf_key, ContentFile(b"%PDF-1.4 two"))
    outcome = _run(cohort, checks.check_pdf_rendered)
    assert outcome.passed
    assert {p["delivery"] for p in outcome.evidence["pdfs"]} == {one.pk, two.pk}


def _send(*, bcc: list[str], attach: bool = True) -> str:
    message = EmailMessage(
        subject="Invoice 7FE1103-0004",
        body="Your invoice",
        from_email=settings.BILLING_FROM_EMAIL,
        to=["ap@northwind.example"],
        bcc=bcc,
        connection=get_connection(),
    )
    if attach:
        message.attach("invoice-7FE1103-0004.pdf", b"%PDF-1.4", "application/pdf")
    message.send()
    return message.anymail_status.message_id


@pytest.mark.django_db
def test_mailgun_check_reads_the_accepted_message_for_pdf_bcc_and_sender(mailgun):
    cohort = cohort_with_members(1, members=1)
    member = cohort.accounts.get()
    assert "no invoice email sent" in _run(cohort, checks.check_mailgun_send).summary
    delivery = factories.InvoiceDeliveryFactory(account=member, sent=True)
    attempt = factories.EmailAttemptFactory(
        delivery=delivery,
        status="sent",
        sent_at=datetime(2026, 1, 2, tzinfo=UTC),
        mailgun_message_id=_send(bcc=[], attach=False),
    )
    outcome = _run(cohort, checks.check_mailgun_send)
    assert not outcome.passed
    assert "no PDF attached" in outcome.summary and "BCC 2658568@bcc.hubspot.com" in outcome.summary
    good = factories.EmailAttemptFactory(
        delivery=delivery,
        request_key="resend-1",
        status="sent",
        sent_at=datetime(2026, 1, 3, tzinfo=UTC),
        mailgun_message_id=_send(bcc=[settings.BILLING_BCC_ADDRESS]),
    )
    outcome = _run(cohort, checks.check_mailgun_send)
    assert outcome.passed, outcome.summary
    assert outcome.evidence["email_attempt"] == str(good.attempt_id)
    assert len(outcome.evidence["events"]) == 2  # one accepted event per recipient
    assert attempt.pk != good.pk
    assert outcome.evidence["templates"] == {"invoice_new": "2026-12", "invoice_notify": "2026-12"}


@pytest.mark.django_db
def test_mailgun_check_fails_when_a_stored_template_is_missing_or_reads_other_variables(
    client, stripe_server, mailgun, s3_bucket, django_capture_on_commit_callbacks
):
    stripe_server.reset()
    stripe_server.webhooks.auto = False
    call_command("setup_webhook_endpoint", base_url="http://testserver", stdout=StringIO())
    endpoint_url = webhook_endpoint_url("http://testserver").removeprefix("http://testserver")
    cohort = cohort_with_members(1, members=0)
    account, customer = billed_customer()
    account.cohort = cohort
    account.save(update_fields=["cohort"])
    factories.CohortMembershipFactory(cohort=cohort, account=account)
    # A real invoice email: finalized in Stripe, delivered through the webhook and Mailgun.
    event = finalized_event(stripe_server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.SENT, delivery.last_error
    assert _run(cohort, checks.check_mailgun_send).passed  # the templates are all there
    mailgun.remove_template("invoice_notify")
    mailgun.put_template("invoice_new", "{{number}} {{amount}} {{hosted_invoice_url}}")

    outcome = _run(cohort, checks.check_mailgun_send)

    assert not outcome.passed
    assert "invoice_notify: no such stored template" in outcome.summary
    assert "invoice_new: uses variables we never send: amount" in outcome.summary


@both_databases
def test_history_check_fails_without_a_verified_export_for_every_member():
    cohort = cohort_with_members(1, members=1)
    member = cohort.accounts.get()
    outcome = _run(cohort, checks.check_history_export)
    assert not outcome.passed
    assert f"account {member.acct_id}: no invoice history exported" in outcome.summary
    legacy = factories.LegacyAccountFactory(acct_id=member.acct_id)
    invoice = factories.LegacyInvoiceFactory(account=legacy, service_month=date(2025, 6, 1))
    outcome = _run(cohort, checks.check_history_export)
    assert "history 2025-06: not exported" in outcome.summary
    month = HistoryMonth.objects.create(
        month=date(2025, 6, 1),
        key="history/2025-06.jsonl.gz",
        rows=1,
        invoices=1,
        sha256="0" * 64,
        exported_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert "export not verified" in _run(cohort, checks.check_history_export).summary
    HistoryMonth.objects.filter(pk=month.pk).update(verified_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert "not copied" in _run(cohort, checks.check_history_export).summary
    LegacyPdfCopy.objects.create(
        inv_uuid=invoice.inv_uuid,
        acct_id=member.acct_id,
        key=f"{member.acct_id}/{invoice.inv_uuid}.pdf",
        status="copied",
        checked_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    outcome = _run(cohort, checks.check_history_export)
    assert outcome.passed, outcome.summary
    assert outcome.evidence["accounts"] == {str(member.acct_id): 1}


# --- post-cycle ---------------------------------------------------------------------------


def _parallel(number=1, members=2):
    return cohort_with_members(
        number, members=members, status="parallel_run", cycle_start=CYCLE_START, cycle_end=CYCLE_END
    )


@pytest.mark.django_db
def test_zero_drift_check_names_open_drift_and_bad_days():
    cohort = _parallel()
    clean_cycle(cohort, skip=CYCLE_START)
    member = cohort.accounts.first()
    drift = DriftRecordFactory(account=member)
    outcome = _run(cohort, checks.check_zero_drift)
    assert not outcome.passed
    assert "no reconciliation run on 2026-01-01" in outcome.summary
    assert f"open drift {drift.pk}: account {member.acct_id} 2026-01 delta +1" in outcome.summary
    assert outcome.evidence["open_drift"] == [drift.pk]
    assert len(outcome.evidence["runs"]) == 30


@pytest.mark.django_db
def test_zero_drift_check_passes_for_a_clean_cycle_with_drift_explained():
    cohort = _parallel()
    clean_cycle(cohort)
    DriftRecordFactory(account=cohort.accounts.first(), status="explained")
    outcome = _run(cohort, checks.check_zero_drift)
    assert outcome.passed, outcome.summary
    assert len(outcome.evidence["runs"]) == 31


@pytest.mark.django_db
def test_delivered_check_fails_on_an_undelivered_invoice_or_a_member_without_one():
    cohort = _parallel()
    first, second = cohort.accounts.order_by("acct_id")
    finalized = datetime(2026, 1, 1, 1, tzinfo=UTC)
    factories.InvoiceDeliveryFactory(account=first, sent=True, finalized_at=finalized)
    failed = factories.InvoiceDeliveryFactory(
        account=second, state="failed", finalized_at=finalized
    )
    outcome = _run(cohort, checks.check_invoices_delivered)
    assert not outcome.passed
    assert f"{failed.number} (account {second.acct_id}): Failed" in outcome.summary
    failed.state = "delivered"
    failed.save()
    factories.InvoiceDeliveryFactory(account=second, not_ours=True, finalized_at=finalized)
    assert _run(cohort, checks.check_invoices_delivered).passed


@pytest.mark.django_db
def test_rollback_request_check_fails_on_a_request_in_this_round(operator):
    cohort = _parallel()
    assert _run(cohort, checks.check_no_rollback_requests).passed
    CohortNote.objects.create(
        cohort=cohort,
        round=1,
        kind="rollback_request",
        text="customer complains",
        by=operator,
        at=datetime(2026, 1, 9, tzinfo=UTC),
    )
    outcome = _run(cohort, checks.check_no_rollback_requests)
    assert not outcome.passed and "customer complains" in outcome.summary


@both_databases
def test_payment_check_fails_when_a_member_paid_twice_for_a_month(stripe):
    cohort = _parallel(members=1)
    member = cohort.accounts.get()
    from tests.metering.conftest import seed_customer

    seed_customer(stripe, member.stripe_customer_id)
    jan = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    feb = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())

    def paid_invoice() -> str:
        stripe_lib.InvoiceItem.create(
            customer=member.stripe_customer_id,
            amount=24_900,
            currency="usd",
            period={"start": jan, "end": feb - 1},
        )
        invoice = stripe_lib.Invoice.create(
            customer=member.stripe_customer_id, pending_invoice_items_behavior="include"
        )
        return stripe_lib.Invoice.pay(invoice.id, paid_out_of_band=True).id

    first = paid_invoice()
    once = _run(cohort, checks.check_payment_once)
    assert once.passed, once.summary
    assert once.evidence["paid_invoices"] == {str(member.acct_id): [first]}
    legacy = factories.LegacyAccountFactory(acct_id=member.acct_id)
    manual = stripe_lib.Invoice.pay(
        stripe_lib.Invoice.create(customer=member.stripe_customer_id).id, paid_out_of_band=True
    ).id
    factories.LegacyInvoiceFactory(
        account=legacy, stripe_invoice_id=manual, service_month=CYCLE_START
    )
    twice = _run(cohort, checks.check_payment_once)
    assert not twice.passed
    assert f"account {member.acct_id} paid 2 times for 2026-01" in twice.summary
    assert first in twice.summary and manual in twice.summary


# --- the run service --------------------------------------------------------------------


@pytest.mark.django_db
def test_running_checks_stores_a_result_and_an_audit_row_per_automated_item(operator):
    cohort = _parallel()
    results = cohort_checks_run(cohort=cohort, by=operator, today=AFTER_CYCLE)
    keys = [r.item for r in results]
    assert keys == ["zero_drift", "invoices_delivered", "no_rollback_requests", "payment_once"]
    assert ChecklistResult.objects.filter(cohort=cohort).count() == 4
    audit = AuditEntry.objects.filter(cohort=cohort, action="check_run")
    assert audit.count() == 4
    assert {a.by for a in audit} == {operator}
    again = cohort_checks_run(cohort=cohort, by=operator, today=AFTER_CYCLE)
    entry = AuditEntry.objects.filter(
        cohort=cohort, action="check_run", subject="zero_drift"
    ).first()
    assert entry.before == {"passed": results[0].passed, "result": results[0].pk}
    assert entry.after["result"] == again[0].pk
