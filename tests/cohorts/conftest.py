"""Cohort tests: staff users in the two groups, cohorts with members, passing checklists and
clean reconciliation days to take one condition away from at a time."""

from datetime import date, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from cohorts import checklist
from cohorts.models import Cohort
from cohorts.permissions import AUDITOR_GROUP, OPERATOR_GROUP
from tests import factories
from tests.invoices.test_admin_browser import browser  # noqa: F401  (headless Chromium)

from .factories import ChecklistResultFactory, ReconciliationRunFactory, SignOffFactory

both_databases = pytest.mark.django_db(databases=["default", "legacy"])

CYCLE_START = date(2026, 1, 1)
CYCLE_END = date(2026, 1, 31)
AFTER_CYCLE = date(2026, 2, 3)
PASSWORD = "correct-horse-9"


def _staff(username: str, group: str):
    call_command("setup_groups", stdout=StringIO())
    user = get_user_model().objects.create_user(
        username, f"{username}@adventive.com", PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def operator(db):
    return _staff("jeffrey", OPERATOR_GROUP)


@pytest.fixture
def operator2(db):
    return _staff("patrick", OPERATOR_GROUP)


@pytest.fixture
def auditor(db):
    return _staff("auditor", AUDITOR_GROUP)


def cohort_with_members(number: int = 1, *, members: int = 2, **fields) -> Cohort:
    cohort = factories.CohortFactory(number=number, **fields)
    for _ in range(members):
        factories.CohortMembershipFactory(cohort=cohort)
    return cohort


def pass_items(cohort: Cohort, phase: str, *, by=None, skip: str | None = None) -> None:
    for item in checklist.items(phase):
        if item.key != skip:
            ChecklistResultFactory(cohort=cohort, item=item.key, by=by)


def clean_cycle(cohort: Cohort, *, skip: date | None = None, **overrides) -> None:
    day = cohort.cycle_start
    while day <= cohort.cycle_end:
        if day != skip:
            ReconciliationRunFactory(run_date=day, cohort_number=cohort.number, **overrides)
        day += timedelta(days=1)


def sign(cohort: Cohort, *users) -> None:
    for user in users:
        SignOffFactory(cohort=cohort, by=user)


def plan_member(server, cohort: Cohort, acct_id: int, *, clock: str, **plan) -> object:
    """A member with a legacy plan (flat fee, tiers) whose customer exists in Stripe."""
    from tests.metering.conftest import make_plan_account, seed_customer

    account = make_plan_account(acct_id=acct_id, cohort=cohort, **plan)
    factories.CohortMembershipFactory(cohort=cohort, account=account)
    seed_customer(server, account.stripe_customer_id, clock=clock)
    return account
