"""Demo data: a billing account per legacy account, sorted into cohorts by pricing model."""

from billing_project.demo import DemoContext, demo_step
from cohorts.models import Cohort
from cohorts.services import cohort_assign_account
from reconciliation.legacy import LegacyAccount, LegacyManagedServiceJob, LegacyPlanUsage

from .models import BillingAccount


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
