"""factory-boy factories for every model: explicit money, fixed tz-aware dates, sequences for ids.

Legacy factories write to the `legacy` alias (tests run with legacy writes enabled).
"""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from billing_project.classifier import LineKind
from billing_project.models import Alert, BillingEvent, WorkerHeartbeat
from cohorts.models import Cohort, CohortMembership
from invoices.models import (
    DeliveryEvent,
    EmailAttempt,
    InvoiceDelivery,
    TrackingEvent,
    inv_uuid_for,
)
from metering.models import BillingAccount
from reconciliation.legacy import (
    LEGACY_ALIAS,
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyManagedServiceJob,
    LegacyPlanSub,
    LegacyPlanUsage,
)

FIXED_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FIXED_MONTH = date(2026, 1, 1)
FACTORY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "factories.billing-tests.adventive.com")


class CohortFactory(DjangoModelFactory):
    class Meta:
        model = Cohort
        django_get_or_create = ("number",)

    number = factory.Sequence(lambda n: 100 + n)
    name = factory.LazyAttribute(lambda o: f"Cohort {o.number}")
    pricing_model = Cohort.PricingModel.FLAT_ONLY
    status = Cohort.Status.PLANNED
    cycle_start = None
    cycle_end = None

    class Params:
        ready = factory.Trait(status=Cohort.Status.READY)
        parallel_run = factory.Trait(
            status=Cohort.Status.PARALLEL_RUN,
            cycle_start=date(2026, 1, 1),
            cycle_end=date(2026, 1, 31),
        )


class BillingAccountFactory(DjangoModelFactory):
    class Meta:
        model = BillingAccount

    acct_id = factory.Sequence(lambda n: 900_000 + n)
    name = factory.Sequence(lambda n: f"Account {n} Media")
    billing_email = factory.LazyAttribute(lambda o: f"billing+{o.acct_id}@customer.example")
    address = "100 Market Street\nChicago, IL 60601"
    stripe_customer_id = factory.LazyAttribute(lambda o: f"cus_test{o.acct_id:010d}")
    billing_owner = BillingAccount.BillingOwner.LEGACY
    cohort = None

    class Params:
        parallel = factory.Trait(billing_owner=BillingAccount.BillingOwner.PARALLEL)
        stripe = factory.Trait(billing_owner=BillingAccount.BillingOwner.STRIPE)


class CohortMembershipFactory(DjangoModelFactory):
    """An open membership; the account's current cohort matches it."""

    class Meta:
        model = CohortMembership

    cohort = factory.SubFactory(CohortFactory)
    account = factory.SubFactory(BillingAccountFactory, cohort=factory.SelfAttribute("..cohort"))
    joined_at = FIXED_AT
    left_at = None
    reason = "test"


class BillingEventFactory(DjangoModelFactory):
    class Meta:
        model = BillingEvent

    name = "webhook_received"
    dimensions = factory.LazyFunction(lambda: {"type": "invoice.finalized"})
    occurred_at = FIXED_AT


class AlertFactory(DjangoModelFactory):
    class Meta:
        model = Alert

    route = Alert.Route.OPERATIONS
    title = factory.Sequence(lambda n: f"Alert {n}")
    body = "Something needs a person."
    dimensions = factory.LazyFunction(dict)


class WorkerHeartbeatFactory(DjangoModelFactory):
    class Meta:
        model = WorkerHeartbeat
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"worker-{n}")
    beat_at = FIXED_AT
    host = "worker.test"
    pid = 4242


class LegacyAccountFactory(DjangoModelFactory):
    class Meta:
        model = LegacyAccount
        database = LEGACY_ALIAS

    acct_id = factory.Sequence(lambda n: 900_000 + n)
    acct_name = factory.Sequence(lambda n: f"Legacy Account {n}")
    billing_email = factory.LazyAttribute(lambda o: f"ap+{o.acct_id}@customer.example")
    billing_address = "200 Pearl Street\nBoston, MA 02116"
    payment_customer_id = factory.LazyAttribute(lambda o: f"cus_legacy{o.acct_id:08d}")
    status = "active"
    created = FIXED_AT


class LegacyInvoiceFactory(DjangoModelFactory):
    class Meta:
        model = LegacyInvoice
        database = LEGACY_ALIAS

    inv_uuid = factory.Sequence(lambda n: str(uuid.uuid5(FACTORY_NAMESPACE, f"invoice-{n}")))
    account = factory.SubFactory(LegacyAccountFactory)
    payment_customer_id = factory.SelfAttribute("account.payment_customer_id")
    stripe_invoice_id = factory.Sequence(lambda n: f"in_test{n:017d}")
    service_month = FIXED_MONTH
    total = Decimal("123.45")
    currency = "usd"
    status = LegacyInvoice.Status.PAID
    created = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)

    class Params:
        unpaid = factory.Trait(status=LegacyInvoice.Status.UNPAID)
        failed = factory.Trait(status=LegacyInvoice.Status.FAILED)


class LegacyInvoiceLineFactory(DjangoModelFactory):
    class Meta:
        model = LegacyInvoiceLine
        database = LEGACY_ALIAS

    line_id = factory.Sequence(lambda n: 1_000_000 + n)
    invoice = factory.SubFactory(LegacyInvoiceFactory)
    line_kind = LineKind.FLAT
    description = "Adventive platform subscription"
    quantity = 1
    rate = Decimal("123.45")
    amount = Decimal("123.45")


class LegacyPlanSubFactory(DjangoModelFactory):
    class Meta:
        model = LegacyPlanSub
        database = LEGACY_ALIAS

    sub_id = factory.Sequence(lambda n: 1_000_000 + n)
    account = factory.SubFactory(LegacyAccountFactory)
    sub_name = "Professional platform"
    sub_invoice_line = "Adventive platform subscription: Professional"
    sub_rate = Decimal("123.45")


class LegacyPlanUsageFactory(DjangoModelFactory):
    class Meta:
        model = LegacyPlanUsage
        database = LEGACY_ALIAS

    usage_id = factory.Sequence(lambda n: 1_000_000 + n)
    account = factory.SubFactory(LegacyAccountFactory)
    usage_type = LineKind.ST.value
    usage_max = 1_000_000
    usage_rate = Decimal("2.500000")


class LegacyManagedServiceJobFactory(DjangoModelFactory):
    class Meta:
        model = LegacyManagedServiceJob
        database = LEGACY_ALIAS

    job_id = factory.Sequence(lambda n: 1_000_000 + n)
    account = factory.SubFactory(LegacyAccountFactory)
    job_name = "Landing page build (6 h)"
    service_month = FIXED_MONTH
    amount = Decimal("123.45")
    created = FIXED_AT


class InvoiceDeliveryFactory(DjangoModelFactory):
    class Meta:
        model = InvoiceDelivery

    stripe_invoice_id = factory.Sequence(lambda n: f"in_Test{n:020d}")
    inv_uuid = factory.LazyAttribute(lambda o: inv_uuid_for(o.stripe_invoice_id))
    account = factory.SubFactory(BillingAccountFactory, billing_owner="parallel")
    stripe_customer_id = factory.LazyAttribute(lambda o: o.account.stripe_customer_id or "")
    number = factory.Sequence(lambda n: f"7FE1103-{n + 1:04d}")
    currency = "usd"
    total_minor = 53_900
    amount_due_minor = 53_900
    collection_method = "send_invoice"
    due_date = date(2026, 3, 31)
    finalized_at = datetime(2026, 3, 1, 1, tzinfo=UTC)

    class Params:
        sent = factory.Trait(
            state=InvoiceDelivery.State.SENT, mailgun_message_id="<20260301.1@notify.adventive.com>"
        )
        not_ours = factory.Trait(
            state=InvoiceDelivery.State.NOT_OURS, not_ours_reason="legacy manual invoice"
        )


class DeliveryEventFactory(DjangoModelFactory):
    class Meta:
        model = DeliveryEvent

    delivery = factory.SubFactory(InvoiceDeliveryFactory)
    at = datetime(2026, 3, 1, 1, 5, tzinfo=UTC)
    step = "recorded"


class EmailAttemptFactory(DjangoModelFactory):
    class Meta:
        model = EmailAttempt

    delivery = factory.SubFactory(InvoiceDeliveryFactory)
    request_key = "initial"
    template = "invoice_new"
    recipient = "ap@northwind.example"
    pdf_key = factory.LazyAttribute(
        lambda o: f"{o.delivery.account.acct_id}/{o.delivery.inv_uuid}.pdf"
    )


class TrackingEventFactory(DjangoModelFactory):
    class Meta:
        model = TrackingEvent

    event_id = factory.Sequence(lambda n: f"tracking-{n}")
    event_type = "delivered"
    message_id = "<20260301.1@notify.adventive.com>"
    recipient = "ap@northwind.example"
    delivery = factory.SubFactory(InvoiceDeliveryFactory)
    occurred_at = datetime(2026, 3, 1, 1, 10, tzinfo=UTC)
