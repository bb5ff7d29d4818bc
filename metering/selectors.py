"""Reads for the catalog, subscriptions and managed jobs (legacy plans from the `legacy` alias)."""

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import QuerySet

from billing_project.classifier import LineKind
from cohorts.models import Cohort
from reconciliation.legacy import LegacyPlanSub, LegacyPlanUsage

from .legacy_pricing import UsageTier
from .models import BillingAccount, CatalogObject
from .pricing import FlatFee, LegacyPlan


def cohort_get(number: int) -> Cohort | None:
    return Cohort.objects.filter(number=number).first()


def account_list(*, cohort: int | None = None) -> QuerySet[BillingAccount]:
    """Billing accounts, by legacy id; only those of cohort `cohort` when given."""
    accounts = BillingAccount.objects.select_related("cohort").order_by("acct_id")
    if cohort is not None:
        accounts = accounts.filter(cohort__number=cohort)
    return accounts


def legacy_plans_get(acct_ids: Iterable[int], *, currency: str = "usd") -> dict[int, LegacyPlan]:
    """The current legacy plan of each account (two queries, whatever the number of accounts)."""
    ids = list(acct_ids)
    fees: dict[int, list[FlatFee]] = defaultdict(list)
    for sub in LegacyPlanSub.objects.filter(account_id__in=ids).order_by("account_id", "sub_id"):
        fees[sub.account_id].append(FlatFee(sub.sub_name, sub.sub_invoice_line, sub.sub_rate_minor))
    tiers: dict[int, dict[LineKind, list[UsageTier]]] = defaultdict(lambda: defaultdict(list))
    for usage in LegacyPlanUsage.objects.filter(account_id__in=ids).order_by("usage_id"):
        tiers[usage.account_id][LineKind(usage.usage_type)].append(
            UsageTier(
                usage_max=None if usage.usage_max is None else int(usage.usage_max),
                usage_rate=usage.usage_rate,
            )
        )
    return {
        acct_id: LegacyPlan(
            acct_id=acct_id,
            currency=currency,
            flat_fees=tuple(fees.get(acct_id, ())),
            tiers={kind: tuple(rows) for kind, rows in tiers.get(acct_id, {}).items()},
        )
        for acct_id in ids
    }


def catalog_ids_get(keys: Iterable[str]) -> dict[str, str]:
    """Our key -> the Stripe id recorded for it, for the keys already recorded."""
    return dict(CatalogObject.objects.filter(key__in=list(keys)).values_list("key", "stripe_id"))


def catalog_kinds() -> dict[str, str]:
    """Stripe price and product ids we created -> their line kind (flat, ST, RM, CV, managed).

    A subscription invoice line carries the subscription's metadata, not its price's: its kind
    is read here, from our own record of the catalog."""
    return dict(
        CatalogObject.objects.filter(
            object_type__in=(CatalogObject.ObjectType.PRICE, CatalogObject.ObjectType.PRODUCT)
        )
        .exclude(kind="")
        .values_list("stripe_id", "kind")
    )
