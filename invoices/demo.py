"""Demo step: bill the parallel-run accounts through one cycle on a Stripe-compatible server, so a
newcomer sees real PDFs, emails and delivery states. Runs only when `STRIPE_API_BASE` points at
such a server (never against Stripe itself)."""

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import stripe
from django.conf import settings

from billing_project.demo import DemoContext, demo_step
from billing_project.webhook_intake import stripe_event_handle
from metering.models import BillingAccount
from reconciliation.legacy import LegacyPlanSub

from .models import InvoiceDelivery

DEMO_ACCOUNTS = 6


def _month_start(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def _seed_customer(account: BillingAccount, clock_id: str) -> dict:
    """The account's existing Stripe customer (its legacy `payment_customer_id`), put into the
    local server, which cannot know it otherwise. Real Stripe already has these customers."""
    body = urllib.parse.urlencode(
        {
            "id": account.stripe_customer_id,
            "email": account.billing_email,
            "name": account.name,
            "test_clock": clock_id,
            "metadata[acct_id]": str(account.acct_id),
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (the local server STRIPE_API_BASE names)
        settings.STRIPE_API_BASE.rstrip("/") + "/_harness/customers",
        data=body,
        headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


@demo_step(40, "invoice delivery")
def invoice_demo(ctx: DemoContext) -> str:
    """One billing cycle for a few parallel-run accounts; their finalized invoices go through
    the same dj-stripe processing a signed webhook gets, and the worker delivers them."""
    if not settings.STRIPE_API_BASE or settings.STRIPE_LIVE_MODE:
        return "skipped: STRIPE_API_BASE does not point at a Stripe-compatible test server"
    if InvoiceDelivery.objects.exists():
        return f"kept {InvoiceDelivery.objects.count()} existing deliveries"
    accounts = list(
        BillingAccount.objects.filter(billing_owner=BillingAccount.BillingOwner.PARALLEL).order_by(
            "acct_id"
        )[:DEMO_ACCOUNTS]
    )
    if not accounts:
        return "skipped: no parallel-run accounts"
    try:
        stripe.Account.retrieve()
    except stripe.StripeError as exc:
        return f"skipped: the Stripe-compatible server did not answer ({exc})"
    today = ctx.today
    this_month = _month_start(today.year, today.month)
    start = this_month - 14 * 86_400
    clock = stripe.test_helpers.TestClock.create(frozen_time=start, name="billing demo")
    product = stripe.Product.create(name="Account Charges", metadata={"kind": "flat"})
    for index, account in enumerate(accounts):
        customer = _seed_customer(account, clock.id)
        plan = LegacyPlanSub.objects.filter(account_id=account.acct_id).first()
        price = stripe.Price.create(
            product=product.id,
            currency="usd",
            unit_amount=plan.sub_rate_minor if plan else 50_000,
            recurring={"interval": "month"},
            metadata={"kind": "flat", "acct_id": str(account.acct_id)},
        )
        by_link = index % 2 == 0
        stripe.Subscription.create(
            customer=customer["id"],
            items=[{"price": price.id}],
            billing_cycle_anchor=this_month,
            proration_behavior="none",
            collection_method="send_invoice" if by_link else "charge_automatically",
            metadata={"acct_id": str(account.acct_id)},
            **({"days_until_due": 30} if by_link else {}),
        )
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=this_month + 2 * 3600)
    processed = 0
    for event in stripe.Event.list(type="invoice.finalized", limit=100).auto_paging_iter():
        # As Stripe sends it: decimals are strings on the wire.
        stripe_event_handle(event=json.loads(json.dumps(event.to_dict(), default=str)))
        processed += 1
    cycle = datetime.fromtimestamp(this_month, tz=UTC)
    return (
        f"billed {len(accounts)} accounts at the {cycle:%B %Y} cycle; "
        f"{processed} finalized invoices queued for delivery"
    )
