"""`subscriptions_provision`: one Stripe subscription per account of a cohort, flat + metered.

Anchored on the 1st of the month (00:00 UTC) the cohort enters parallel run, with
`proration_behavior=none` (nothing billed for the days before the anchor) and the account's
legacy collection method. Idempotent: an account with a recorded subscription is skipped; the
create carries `idempotency_key=subscription:<acct_id>:<anchor month>`, and a subscription of
ours found in Stripe but not recorded (a run cut short) is recorded instead of duplicated.

Stripe's own invoice emails are an account setting (Dashboard > Settings > Billing >
"Email finalized invoices to customers"), not an API parameter: it must stay off, since this
application sends the invoices.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db import IntegrityError, transaction

from billing_project.stripe_api import StripeApiError
from cohorts.models import Cohort
from reconciliation.legacy import LegacyInvoice

from . import gateways
from .catalog_import import price_specs_for_accounts
from .locks import exclusive_run
from .models import BillingAccount, SubscriptionRecord
from .selectors import account_list, catalog_ids_get, cohort_get

SEND_INVOICE_DAYS_UNTIL_DUE = 30
SOURCE = "provision_subscriptions"


class ProvisionError(Exception):
    """Provisioning cannot start (unknown cohort, bad anchor): a message for the operator."""


@dataclass
class ProvisionReport:
    anchor: datetime | None = None
    created: list[tuple[int, str]] = field(default_factory=list)  # (acct_id, subscription id)
    adopted: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # already recorded
    planned: list[tuple[int, str]] = field(default_factory=list)  # dry run: (acct_id, what)
    errors: list[str] = field(default_factory=list)


def cohort_anchor(cohort: Cohort, *, today: date | None = None) -> datetime:
    """The 1st of the month, 00:00 UTC, the cohort enters (or entered) parallel run: its
    cycle start when set, otherwise the 1st of next month."""
    if cohort.cycle_start is not None:
        start = cohort.cycle_start
    else:
        today = today or datetime.now(UTC).date()
        start = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    if start.day != 1:
        raise ProvisionError(
            f"cohort {cohort.number} cycle_start {start} is not the 1st of a month: "
            "subscriptions are anchored on the 1st"
        )
    return datetime(start.year, start.month, 1, tzinfo=UTC)


def legacy_collection_method(account: BillingAccount) -> tuple[str, int | None]:
    """How the legacy system collected: the collection method of the account's latest legacy
    invoice in Stripe; if none is known, automatic when the customer has a default payment
    method, else an invoice paid by link within 30 days."""
    latest = (
        LegacyInvoice.objects.filter(account_id=account.acct_id, stripe_invoice_id__isnull=False)
        .order_by("-service_month")
        .values_list("stripe_invoice_id", flat=True)
        .first()
    )
    if latest:
        found = gateways.invoice_payment_terms(latest)
        if found is not None and found[0] in ("charge_automatically", "send_invoice"):
            method, days = found
            if method == "send_invoice":
                return method, days or SEND_INVOICE_DAYS_UNTIL_DUE
            return method, None
    customer = gateways.customer_retrieve(account.stripe_customer_id) or {}
    if (customer.get("invoice_settings") or {}).get("default_payment_method"):
        return "charge_automatically", None
    return "send_invoice", SEND_INVOICE_DAYS_UNTIL_DUE


def _ours_unrecorded(account: BillingAccount, anchor: int) -> dict | None:
    for subscription in gateways.subscriptions_for_customer(account.stripe_customer_id):
        metadata = subscription.get("metadata") or {}
        if (
            metadata.get("source") == SOURCE
            and metadata.get("acct_id") == str(account.acct_id)
            and subscription.get("billing_cycle_anchor") == anchor
            and subscription.get("status") not in ("canceled", "incomplete_expired")
        ):
            return subscription
    return None


def _record(account, cohort, subscription, anchor, method, items) -> SubscriptionRecord:
    with transaction.atomic():
        record, _ = SubscriptionRecord.objects.get_or_create(
            account=account,
            defaults={
                "cohort": cohort,
                "stripe_subscription_id": subscription["id"],
                "billing_cycle_anchor": anchor,
                "collection_method": method,
                "items": items,
            },
        )
    return record


def subscriptions_provision(
    *,
    cohort: int,
    anchor: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ProvisionReport:
    """Create the cohort's subscriptions (idempotent; `dry_run` reads but creates nothing)."""
    cohort_obj = cohort_get(cohort)
    if cohort_obj is None:
        raise ProvisionError(f"no cohort {cohort}")
    anchor = anchor or cohort_anchor(cohort_obj)
    if (anchor.day, anchor.hour, anchor.minute, anchor.second) != (1, 0, 0, 0):
        raise ProvisionError(f"anchor {anchor:%Y-%m-%d %H:%M} is not the 1st of a month, 00:00")
    report = ProvisionReport(anchor=anchor)
    if dry_run:
        _provision(cohort_obj, anchor, report, progress, dry_run=True)
    else:
        with exclusive_run("subscription provisioning"):
            _provision(cohort_obj, anchor, report, progress, dry_run=False)
    return report


def _provision(cohort_obj, anchor, report, progress, *, dry_run: bool) -> None:
    cohort = cohort_obj.number
    say = progress or (lambda _message: None)
    accounts = list(account_list(cohort=cohort).select_related("subscription_record"))
    specs = price_specs_for_accounts([a.acct_id for a in accounts], report.errors)
    price_ids = catalog_ids_get({s.key for items in specs.values() for s, _ in items})
    anchor_ts = int(anchor.timestamp())
    for index, account in enumerate(accounts, start=1):
        say(f"{index}/{len(accounts)} account {account.acct_id}")
        if hasattr(account, "subscription_record"):
            report.skipped.append(
                (account.acct_id, account.subscription_record.stripe_subscription_id)
            )
            continue
        if account.acct_id not in specs:
            continue  # the plan error is in report.errors
        if not account.stripe_customer_id:
            report.errors.append(
                f"account {account.acct_id}: no Stripe customer (run link_stripe_customers)"
            )
            continue
        missing = [spec.key for spec, _ in specs[account.acct_id] if spec.key not in price_ids]
        if missing:
            report.errors.append(
                f"account {account.acct_id}: price {', '.join(missing)} not imported "
                "(run import_legacy_catalog)"
            )
            continue
        items = [
            {
                "price": price_ids[spec.key],
                **({"quantity": quantity} if quantity is not None else {}),
                "metadata": {"kind": spec.kind.value},
            }
            for spec, quantity in specs[account.acct_id]
        ]
        try:
            method, days = legacy_collection_method(account)
            if dry_run:
                kinds = "+".join(spec.kind.value for spec, _ in specs[account.acct_id])
                report.planned.append((account.acct_id, f"{kinds}, {method}"))
                continue
            subscription = _ours_unrecorded(account, anchor_ts)
            adopted = subscription is not None
            if subscription is None:
                params = {
                    "customer": account.stripe_customer_id,
                    "items": items,
                    "billing_cycle_anchor": anchor_ts,
                    "proration_behavior": "none",
                    "collection_method": method,
                    "metadata": {
                        "acct_id": str(account.acct_id),
                        "cohort": str(cohort),
                        "source": SOURCE,
                    },
                }
                if days is not None:
                    params["days_until_due"] = days
                subscription = gateways.subscription_create(
                    params, idempotency_key=f"subscription:{account.acct_id}:{anchor:%Y-%m}"
                )
        except StripeApiError as exc:
            report.errors.append(f"account {account.acct_id}: Stripe refused: {exc.message}")
            continue
        item_ids = {si["price"]["id"]: si["id"] for si in subscription["items"]["data"]}
        recorded_items = [{**item, "item": item_ids.get(item["price"], "")} for item in items]
        try:
            record = _record(account, cohort_obj, subscription, anchor, method, recorded_items)
        except IntegrityError as exc:
            report.errors.append(f"account {account.acct_id}: could not record: {exc}")
            continue
        (report.adopted if adopted else report.created).append(
            (account.acct_id, record.stripe_subscription_id)
        )
