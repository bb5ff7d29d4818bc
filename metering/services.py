"""Writes for accounts' Stripe customers, managed-service jobs and portal sessions.

The catalog, subscriptions and their verification have their own modules
(`catalog_import`, `provisioning`, `verification`); the backtest is `forecast`.
"""

from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing_project.classifier import LineKind
from billing_project.stripe_api import StripeApiError
from reconciliation.legacy import LegacyAccount, LegacyManagedServiceJob

from . import gateways
from .locks import exclusive_run
from .models import BillingAccount, ManagedJob, SubscriptionRecord

SENDING_TIMEOUT = timedelta(minutes=5)
"""A job left `sending` longer than this is taken to be an attempt that died."""


class CustomerLinkError(Exception):
    """An account cannot be linked to a Stripe customer without a person deciding."""


@dataclass(frozen=True)
class LinkResult:
    acct_id: int
    outcome: str  # linked | backfilled | created | unchanged
    customer_id: str


def account_link_customer(*, account: BillingAccount) -> LinkResult:
    """Link the account to its existing Stripe customer (ours, else the legacy
    `payment_customer_id`), writing `metadata.acct_id` on it when missing. A customer is
    created only when the account has none anywhere, never a second one. Idempotent; one
    run per account at a time (a concurrent one raises RunInProgress)."""
    with exclusive_run(f"customer link for account {account.acct_id}"):
        account.refresh_from_db(fields=["stripe_customer_id"])
        return _link_customer(account)


def _link_customer(account: BillingAccount) -> LinkResult:
    acct = str(account.acct_id)
    candidate = account.stripe_customer_id
    if not candidate:
        legacy = LegacyAccount.objects.filter(acct_id=account.acct_id).first()
        candidate = (legacy.payment_customer_id or "").strip() if legacy else ""
    if candidate:
        customer = gateways.customer_retrieve(candidate)
        if customer is None:
            raise CustomerLinkError(
                f"account {acct}: Stripe has no customer {candidate}; not creating another "
                "(check the legacy payment_customer_id)"
            )
        owner = (customer.get("metadata") or {}).get("acct_id")
        if owner and owner != acct:
            raise CustomerLinkError(
                f"account {acct}: customer {candidate} has metadata.acct_id={owner}"
            )
        outcome = "unchanged"
        if not owner:
            gateways.customer_set_metadata(candidate, {"acct_id": acct})
            outcome = "backfilled"
    else:
        found = [
            c
            for c in (
                gateways.customers_by_email(account.billing_email) if account.billing_email else []
            )
            if (c.get("metadata") or {}).get("acct_id") == acct
        ]
        if len(found) > 1:
            raise CustomerLinkError(
                f"account {acct}: {len(found)} Stripe customers carry metadata.acct_id={acct}: "
                + ", ".join(c["id"] for c in found)
            )
        if found:
            candidate, outcome = found[0]["id"], "linked"
        else:
            candidate = gateways.customer_create(
                name=account.name,
                email=account.billing_email,
                metadata={"acct_id": acct},
                idempotency_key=f"customer:{acct}",
            )["id"]
            outcome = "created"
    with transaction.atomic():
        locked = BillingAccount.objects.select_for_update().get(pk=account.pk)
        if locked.stripe_customer_id != candidate:
            if locked.stripe_customer_id:
                raise CustomerLinkError(
                    f"account {acct} is already linked to {locked.stripe_customer_id}"
                )
            locked.stripe_customer_id = candidate
            try:
                with transaction.atomic():
                    locked.save(update_fields=["stripe_customer_id", "updated_at"])
            except IntegrityError as exc:
                raise CustomerLinkError(
                    f"account {acct}: customer {candidate} is linked to another account"
                ) from exc
            if outcome == "unchanged":
                outcome = "linked"
    account.stripe_customer_id = candidate
    return LinkResult(account.acct_id, outcome, candidate)


# --- managed-service jobs ---------------------------------------------------------------------


def managed_jobs_import_legacy(
    *, month: date | None = None, acct_ids: list[int] | None = None
) -> int:
    """Copy legacy managed-service jobs of known accounts (of `month`, of `acct_ids` when
    given) into ManagedJob rows, once each (keyed by the legacy job id). Returns the new ones."""
    jobs = LegacyManagedServiceJob.objects.all()
    if month is not None:
        jobs = jobs.filter(service_month=month.replace(day=1))
    if acct_ids is not None:
        jobs = jobs.filter(account_id__in=acct_ids)
    accounts = dict(BillingAccount.objects.values_list("acct_id", "pk"))
    created = 0
    for job in jobs.order_by("job_id"):
        if job.account_id not in accounts:
            continue
        _row, was_created = ManagedJob.objects.get_or_create(
            legacy_job_id=job.job_id,
            defaults={
                "account_id": accounts[job.account_id],
                "description": job.job_name[:200],
                "service_month": job.service_month.replace(day=1),
                "amount_minor": job.amount_minor,
                "currency": "usd",
            },
        )
        created += was_created
    return created


def managed_job_create(
    *,
    account: BillingAccount,
    description: str,
    service_month: date,
    amount_minor: int,
    currency: str = "usd",
    by: AbstractBaseUser | None = None,
) -> ManagedJob:
    """A job entered by an operator; pending until sent to Stripe."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError(f"amount_minor must be a positive integer: {amount_minor!r}")
    if not description.strip():
        raise ValueError("description must not be empty")
    return ManagedJob.objects.create(
        account=account,
        description=description.strip(),
        service_month=service_month.replace(day=1),
        amount_minor=amount_minor,
        currency=currency.lower(),
        created_by=by,
    )


def _month_period(month: date) -> dict[str, int]:
    last = monthrange(month.year, month.month)[1]
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year, month.month, last, 23, 59, 59, tzinfo=UTC)
    return {"start": int(start.timestamp()), "end": int(end.timestamp())}


def _find_sent_item(job: ManagedJob) -> str | None:
    """The invoice item a previous attempt created, if Stripe has it (found by metadata)."""
    for item in gateways.invoice_items_for_customer(job.account.stripe_customer_id):
        if (item.get("metadata") or {}).get("managed_job") == str(job.pk):
            return item["id"]
    return None


def managed_job_send(*, job_id: int) -> ManagedJob:
    """Send a job to Stripe as an invoice item (`metadata.kind=managed`) on the account's next
    invoice, once: a sent job, or one another worker is sending, is left alone; a retry first
    looks in Stripe for the item an earlier attempt created (by `metadata.managed_job`), and
    each attempt carries its own idempotency key `managed-job:<id>:<attempt>`."""
    with transaction.atomic():
        job = ManagedJob.objects.select_for_update().select_related("account").get(pk=job_id)
        now = timezone.now()
        if job.status == ManagedJob.Status.SENT or (
            job.status == ManagedJob.Status.SENDING
            and job.last_attempt_at is not None
            and now - job.last_attempt_at < SENDING_TIMEOUT
        ):
            return job  # sent, or another worker is sending it right now
        retry = job.attempts > 0
        job.status = ManagedJob.Status.SENDING
        job.attempts += 1
        job.last_attempt_at = now
        job.save(update_fields=["status", "attempts", "last_attempt_at"])
    account = job.account
    try:
        if not account.stripe_customer_id:
            raise CustomerLinkError(f"account {account.acct_id} has no Stripe customer")
        item_id = _find_sent_item(job) if retry else None
        if item_id is None:
            record = SubscriptionRecord.objects.filter(account=account).first()
            params = {
                "customer": account.stripe_customer_id,
                "amount": job.amount_minor,
                "currency": job.currency,
                "description": job.description,
                "period": _month_period(job.service_month),
                "metadata": {
                    "kind": LineKind.MANAGED.value,
                    "acct_id": str(account.acct_id),
                    "managed_job": str(job.pk),
                    **({"legacy_job_id": str(job.legacy_job_id)} if job.legacy_job_id else {}),
                },
            }
            if record is not None:
                params["subscription"] = record.stripe_subscription_id
            item_id = gateways.invoice_item_create(
                params, idempotency_key=f"managed-job:{job.pk}:{job.attempts}"
            )["id"]
    except (StripeApiError, CustomerLinkError) as exc:
        ManagedJob.objects.filter(pk=job.pk, status=ManagedJob.Status.SENDING).update(
            status=ManagedJob.Status.FAILED, last_error=str(exc)[:2000]
        )
        job.refresh_from_db()
        return job
    ManagedJob.objects.filter(pk=job.pk).exclude(status=ManagedJob.Status.SENT).update(
        status=ManagedJob.Status.SENT,
        stripe_invoice_item_id=item_id,
        sent_at=timezone.now(),
        last_error="",
    )
    job.refresh_from_db()
    return job


def portal_session_create(*, account: BillingAccount, return_url: str) -> str:
    """A Stripe Customer Portal session for the account; returns its URL (short-lived)."""
    if not account.stripe_customer_id:
        raise CustomerLinkError(f"account {account.acct_id} has no Stripe customer")
    return gateways.portal_session_create(
        customer_id=account.stripe_customer_id, return_url=return_url
    )["url"]
