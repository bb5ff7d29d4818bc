"""Demo data: a billing account per legacy account, sorted into cohorts by pricing model; then
(on a Stripe-compatible test server) their customers, the catalog and cohort 2's subscriptions."""

import urllib.parse
import urllib.request

import stripe
from django.conf import settings

from billing_project.demo import DemoContext, demo_step
from cohorts.models import Cohort
from cohorts.services import cohort_assign_account
from reconciliation.demo import demo_months
from reconciliation.legacy import LegacyAccount, LegacyManagedServiceJob, LegacyPlanUsage

from .catalog_import import catalog_import
from .models import BillingAccount
from .provisioning import subscriptions_provision
from .services import CustomerLinkError, account_link_customer, managed_jobs_import_legacy
from .usage_demo import usage_demo


def _pricing_models() -> dict[int, int]:
    """Legacy acct_id -> pricing model: managed jobs -> custom, else tiers -> tiered, else flat."""
    managed = set(LegacyManagedServiceJob.objects.values_list("account_id", flat=True).distinct())
    tiered = set(LegacyPlanUsage.objects.values_list("account_id", flat=True).distinct())
    models = {}
    for acct_id in LegacyAccount.objects.values_list("acct_id", flat=True):
        if acct_id in managed:
            models[acct_id] = Cohort.PricingModel.CUSTOM
        elif acct_id in tiered:
            models[acct_id] = Cohort.PricingModel.FLAT_TIERED
        else:
            models[acct_id] = Cohort.PricingModel.FLAT_ONLY
    return models


@demo_step(30, "billing accounts")
def accounts_demo(ctx: DemoContext) -> str:
    """A BillingAccount per legacy account (idempotent), each in its pricing model's cohort."""
    cohorts = {
        cohort.pricing_model: cohort for cohort in Cohort.objects.filter(number__in=(1, 2, 3))
    }
    pricing_models = _pricing_models()
    missing = set(pricing_models.values()) - set(cohorts)
    if missing:
        raise ValueError(
            f"no demo cohort for pricing model(s) {sorted(missing)}: run the cohorts step"
        )
    created = 0
    per_cohort = {cohort.number: 0 for cohort in cohorts.values()}
    for legacy in LegacyAccount.objects.order_by("acct_id"):
        cohort = cohorts[pricing_models[legacy.acct_id]]
        owner = (
            BillingAccount.BillingOwner.PARALLEL
            if cohort.status == Cohort.Status.PARALLEL_RUN
            else BillingAccount.BillingOwner.LEGACY
        )
        account, was_created = BillingAccount.objects.update_or_create(
            acct_id=legacy.acct_id,
            defaults={
                "name": legacy.acct_name,
                "billing_email": legacy.billing_email,
                "address": legacy.billing_address,
                "stripe_customer_id": legacy.payment_customer_id or None,
                "billing_owner": owner,
            },
        )
        cohort_assign_account(account=account, cohort=cohort, reason="demo: pricing model")
        created += was_created
        per_cohort[cohort.number] += 1
    spread = ", ".join(f"cohort {number}: {count}" for number, count in sorted(per_cohort.items()))
    return f"{sum(per_cohort.values())} billing accounts ({created} new; {spread})"


def _harness_customer_seed(account: BillingAccount) -> None:
    """Put the account's existing Stripe customer (its legacy `payment_customer_id`) into the
    local Stripe-compatible server, which cannot know it otherwise."""
    body = urllib.parse.urlencode(
        {"id": account.stripe_customer_id, "email": account.billing_email, "name": account.name}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (the local server STRIPE_API_BASE names)
        settings.STRIPE_API_BASE.rstrip("/") + "/_harness/customers",
        data=body,
        headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


@demo_step(35, "stripe catalog")
def catalog_demo(ctx: DemoContext) -> str:
    """Link the accounts to their Stripe customers, import the catalog, subscribe cohort 2
    (ready: anchored on the 1st of next month) and load the last month's managed jobs.
    Only against a Stripe-compatible test server; idempotent."""
    if not settings.STRIPE_API_BASE or settings.STRIPE_LIVE_MODE:
        return "skipped: STRIPE_API_BASE does not point at a Stripe-compatible test server"
    try:
        stripe.Account.retrieve(api_key=settings.STRIPE_SECRET_KEY)
    except stripe.StripeError as exc:
        return f"skipped: the Stripe-compatible server did not answer ({exc})"
    accounts = list(BillingAccount.objects.exclude(stripe_customer_id=None).order_by("acct_id"))
    unlinked = 0
    for account in accounts:
        _harness_customer_seed(account)
        try:
            account_link_customer(account=account)
        except CustomerLinkError:
            unlinked += 1
    imported = catalog_import()
    provisioned = subscriptions_provision(cohort=2)
    months = demo_months(today=ctx.today, months=1)
    jobs = managed_jobs_import_legacy(month=months[-1])
    problems = unlinked + len(imported.errors) + len(provisioned.errors)
    return (
        f"{len(accounts)} customers linked; catalog: {len(imported.created)} Stripe objects "
        f"created, {imported.existing} already recorded; cohort 2: "
        f"{len(provisioned.created)} subscriptions anchored {provisioned.anchor:%Y-%m-%d} "
        f"({len(provisioned.skipped)} already); {jobs} managed jobs loaded; {problems} problems"
    )


demo_step(36, "usage")(usage_demo)
