"""Writes to cohorts and memberships. Each service owns its transaction."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from billing_project.datapoints import datapoint_record
from metering.models import BillingAccount

from .models import Cohort, CohortMembership


def cohort_assign_account(
    *,
    account: BillingAccount,
    cohort: Cohort | None,
    reason: str = "",
    by: AbstractBaseUser | None = None,
) -> CohortMembership | None:
    """Move an account into `cohort` (or out of any, with None), closing the open membership.

    Idempotent: assigning the cohort the account is already in changes nothing.
    """
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account.pk)
        current = CohortMembership.objects.filter(account=account, left_at__isnull=True).first()
        if current is not None and cohort is not None and current.cohort_id == cohort.pk:
            return current
        now = timezone.now()
        if current is not None:
            current.left_at = now
            current.save(update_fields=["left_at"])
        membership = None
        if cohort is not None:
            membership = CohortMembership.objects.create(
                cohort=cohort, account=account, joined_at=now, reason=reason, moved_by=by
            )
        account.cohort = cohort
        account.save(update_fields=["cohort", "updated_at"])
        datapoint_record(
            name="cohort_membership_changed",
            dimensions={
                "account_id": account.acct_id,
                "from_cohort": current.cohort.number if current else None,
                "to_cohort": cohort.number if cohort else None,
                "reason": reason,
            },
        )
    return membership
