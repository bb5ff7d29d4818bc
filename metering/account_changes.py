"""Changing where an account's invoices go: its billing email and its Stripe customer id.

Only these services change them (the admin form shows both read-only), each with a reason and
an `AccountChange` row (who, when, before, after). A new billing email is applied only once a
second staff user who may operate accounts confirms it, so a send before then still goes to
the address on record; a Stripe customer id is applied at once, after Stripe confirms the
customer exists. The billing owner changes only through cohort transitions.
"""

import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing_project.errors import BillingError, ConflictError

from . import gateways
from .models import AccountChange, BillingAccount

OPERATE = "metering.change_billingaccount"
MAX_REASON = 1000
_CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{1,250}$")


def _reason(text: str) -> str:
    reason = (text or "").strip()
    if not reason:
        raise BillingError("say why the change is made", field="reason")
    if len(reason) > MAX_REASON:
        raise BillingError(f"at most {MAX_REASON} characters", field="reason")
    return reason


def _require_operator(user: AbstractBaseUser) -> None:
    if not (user.is_active and user.is_staff and user.has_perm(OPERATE)):
        raise BillingError("only a billing operator may change an account's routing", code="denied")


def account_email_change_request(
    *, account: BillingAccount, email: str, reason: str, by: AbstractBaseUser
) -> AccountChange:
    """Ask for a new billing email; pending until a second person confirms. One pending
    request per account."""
    _require_operator(by)
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise BillingError(f"{email[:80]!r} is not an email address", field="email") from None
    if len(email) > BillingAccount._meta.get_field("billing_email").max_length:
        raise BillingError("the address is too long", field="email")
    reason = _reason(reason)
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account.pk)
        if email.casefold() == account.billing_email.casefold():
            raise BillingError(f"{account} already has {email}", field="email")
        try:
            with transaction.atomic():
                return AccountChange.objects.create(
                    account=account,
                    field=AccountChange.Field.BILLING_EMAIL,
                    before=account.billing_email,
                    after=email,
                    reason=reason,
                    status=AccountChange.Status.PENDING,
                    requested_by=by,
                    requested_at=timezone.now(),
                )
        except IntegrityError:
            raise ConflictError(
                f"{account} already has an email change waiting for confirmation", field="email"
            ) from None


def account_email_change_confirm(*, change_id: int, by: AbstractBaseUser) -> AccountChange:
    """Apply a pending email change as its second person. Idempotent: an applied change is
    returned as it is; the requester cannot confirm their own request."""
    _require_operator(by)
    with transaction.atomic():
        change = AccountChange.objects.select_for_update().get(pk=change_id)
        if change.status == AccountChange.Status.APPLIED and change.decided_by_id == by.pk:
            return change
        if change.status != AccountChange.Status.PENDING:
            raise ConflictError(f"this change is {change.get_status_display().lower()}")
        if change.requested_by_id == by.pk:
            raise BillingError(
                "a second person must confirm: you asked for this change", code="denied"
            )
        account = BillingAccount.objects.select_for_update().get(pk=change.account_id)
        if account.billing_email != change.before:
            raise ConflictError("the billing email changed since the request: ask again")
        account.billing_email = change.after
        account.save(update_fields=["billing_email", "updated_at"])
        change.status = AccountChange.Status.APPLIED
        change.decided_by = by
        change.decided_at = timezone.now()
        change.save(update_fields=["status", "decided_by", "decided_at"])
    return change


def account_change_cancel(*, change_id: int, by: AbstractBaseUser) -> AccountChange:
    """Withdraw or refuse a pending change (the requester or another operator)."""
    _require_operator(by)
    with transaction.atomic():
        change = AccountChange.objects.select_for_update().get(pk=change_id)
        if change.status != AccountChange.Status.PENDING:
            raise ConflictError(f"this change is {change.get_status_display().lower()}")
        change.status = AccountChange.Status.CANCELLED
        change.decided_by = by
        change.decided_at = timezone.now()
        change.save(update_fields=["status", "decided_by", "decided_at"])
    return change


def account_customer_id_change(
    *, account: BillingAccount, customer_id: str, reason: str, by: AbstractBaseUser
) -> AccountChange:
    """Point the account at another Stripe customer, which must exist in Stripe and belong to
    no other account; applied at once and recorded. Network call (one customer read)."""
    _require_operator(by)
    customer_id = (customer_id or "").strip()
    if not _CUSTOMER_ID.match(customer_id):
        raise BillingError(
            "a Stripe customer id is cus_ followed by letters and digits", field="customer_id"
        )
    reason = _reason(reason)
    if gateways.customer_retrieve(customer_id) is None:
        raise BillingError(f"Stripe has no customer {customer_id}", field="customer_id")
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account.pk)
        before = account.stripe_customer_id or ""
        if before == customer_id:
            raise BillingError(f"{account} is already {customer_id}", field="customer_id")
        other = BillingAccount.objects.filter(stripe_customer_id=customer_id).first()
        if other is not None:
            raise ConflictError(f"{customer_id} belongs to account {other}", field="customer_id")
        account.stripe_customer_id = customer_id
        account.save(update_fields=["stripe_customer_id", "updated_at"])
        now = timezone.now()
        return AccountChange.objects.create(
            account=account,
            field=AccountChange.Field.STRIPE_CUSTOMER_ID,
            before=before,
            after=customer_id,
            reason=reason,
            status=AccountChange.Status.APPLIED,
            requested_by=by,
            requested_at=now,
            decided_by=by,
            decided_at=now,
        )
