"""`catalog_verify` (read-only): does each account's Stripe subscription bill its legacy plan?

Per account: a subscription is recorded and live in Stripe; its flat items bill the legacy
`sub_rate`s; each metered item's price is volume-tiered on its type's meter with the legacy
tiers (translated as `metering.pricing` documents). Findings name the account and Stripe ids.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from . import gateways
from .catalog import METERS
from .catalog_import import price_matches_spec, price_specs_for_accounts
from .models import SubscriptionRecord
from .selectors import account_list, catalog_ids_get

LIVE_STATUSES = ("active", "trialing", "past_due", "incomplete", "unpaid", "paused")


@dataclass(frozen=True)
class Finding:
    acct_id: int
    problem: str
    stripe_id: str = ""

    def __str__(self) -> str:
        where = f" [{self.stripe_id}]" if self.stripe_id else ""
        return f"account {self.acct_id}{where}: {self.problem}"


@dataclass
class VerifyReport:
    accounts: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def _errors_as_findings(errors: list[str]) -> list[Finding]:
    findings = []
    for error in errors:
        head, _, rest = error.partition(": ")
        acct = int(head.split()[-1]) if head.startswith("account ") else 0
        findings.append(Finding(acct, rest or error))
    return findings


def catalog_verify(
    *, cohort: int | None = None, progress: Callable[[str], None] | None = None
) -> VerifyReport:
    """Compare every account's subscription in Stripe with its legacy plan. Writes nothing."""
    say = progress or (lambda _message: None)
    accounts = list(account_list(cohort=cohort))
    report = VerifyReport(accounts=len(accounts))
    errors: list[str] = []
    specs = price_specs_for_accounts([a.acct_id for a in accounts], errors)
    report.findings.extend(_errors_as_findings(errors))
    records = {
        r.account_id: r
        for r in SubscriptionRecord.objects.select_related("account").filter(
            account__in=[a.pk for a in accounts]
        )
    }
    meter_ids = catalog_ids_get(m.key for m in METERS.values())
    prices: dict[str, dict | None] = {}
    for index, account in enumerate(accounts, start=1):
        say(f"{index}/{len(accounts)} account {account.acct_id}")
        if account.acct_id not in specs:
            continue
        record = records.get(account.pk)
        if record is None:
            report.findings.append(Finding(account.acct_id, "no subscription provisioned"))
            continue
        report.findings.extend(
            _check_subscription(account.acct_id, record, specs[account.acct_id], meter_ids, prices)
        )
    return report


def _price(prices: dict[str, dict | None], price_id: str) -> dict | None:
    if price_id not in prices:
        prices[price_id] = gateways.price_retrieve(price_id)
    return prices[price_id]


def _check_subscription(acct_id, record, specs, meter_ids, prices) -> list[Finding]:
    sub_id = record.stripe_subscription_id
    subscription = gateways.subscription_retrieve(sub_id)
    if subscription is None:
        return [Finding(acct_id, "subscription not found in Stripe", sub_id)]
    findings = []
    if subscription.get("status") not in LIVE_STATUSES:
        findings.append(Finding(acct_id, f"subscription is {subscription.get('status')}", sub_id))
    if subscription.get("customer") != record.account.stripe_customer_id:
        findings.append(
            Finding(acct_id, f"subscription belongs to {subscription.get('customer')}", sub_id)
        )
    flat_expected = Counter()
    metered_expected = {}
    for spec, quantity in specs:
        if spec.metered:
            metered_expected[spec.kind.value] = spec
        else:
            flat_expected[spec.unit_amount] += quantity or 1
    flat_actual = Counter()
    metered_seen = set()
    for item in (subscription.get("items") or {}).get("data", []):
        price = _price(prices, item["price"]["id"])
        if price is None:
            findings.append(Finding(acct_id, "price not found in Stripe", item["price"]["id"]))
            continue
        recurring = price.get("recurring") or {}
        if recurring.get("usage_type") != "metered":
            flat_actual[price.get("unit_amount")] += item.get("quantity") or 1
            if price.get("unit_amount") not in flat_expected:
                findings.append(
                    Finding(
                        acct_id,
                        f"flat price bills {price.get('unit_amount')} a month (minor units); "
                        f"legacy sub_rate is {_amounts(flat_expected)}",
                        price["id"],
                    )
                )
            continue
        kind = (price.get("metadata") or {}).get("kind", "")
        spec = metered_expected.get(kind)
        if spec is None:
            findings.append(
                Finding(acct_id, f"metered {kind} price not in the legacy plan", price["id"])
            )
            continue
        metered_seen.add(kind)
        problems = price_matches_spec(price, spec, meter_id=meter_ids.get(spec.meter_key))
        findings.extend(Finding(acct_id, f"{kind} price: {p}", price["id"]) for p in problems)
    if flat_actual != flat_expected and all(a in flat_expected for a in flat_actual):
        findings.append(
            Finding(
                acct_id,
                f"flat items bill {_amounts(flat_actual)}; legacy sub_rate is "
                f"{_amounts(flat_expected)} (minor units)",
                sub_id,
            )
        )
    for kind in sorted(set(metered_expected) - metered_seen):
        findings.append(Finding(acct_id, f"no metered {kind} item on the subscription", sub_id))
    return findings


def _amounts(counter: Counter) -> str:
    parts = [
        f"{amount} x{count}" if count > 1 else str(amount)
        for amount, count in sorted(counter.items(), key=lambda x: (x[0] is None, x[0] or 0))
    ]
    return " + ".join(parts) or "none"
