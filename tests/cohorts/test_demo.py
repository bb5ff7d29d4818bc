from datetime import date
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from cohorts.checklist_models import AuditEntry, ChecklistResult, SignOff
from cohorts.models import Cohort
from cohorts.selectors import checklist_latest, cycle_progress
from metering.models import BillingAccount

from .conftest import both_databases

# The demo plans its cycles from today.
pytestmark = pytest.mark.calendar


def _demo() -> str:
    out = StringIO()
    call_command("billing_demo", accounts=9, months=3, skip=["invoice delivery"], stdout=out)
    return out.getvalue()


@both_databases
def test_the_demo_ends_with_cohort_1_migrated_2_in_parallel_run_3_planned_and_failing(
    settings, stripe, s3_bucket
):
    settings.DEBUG = True
    out = _demo()
    assert "cohort board: cohort 1 migrated" in out
    cohorts = {c.number: c for c in Cohort.objects.all()}
    assert [cohorts[n].status for n in (1, 2, 3)] == ["migrated", "parallel_run", "planned"]
    owners = lambda n: set(  # noqa: E731
        BillingAccount.objects.filter(cohort__number=n).values_list("billing_owner", flat=True)
    )
    assert owners(1) == {"stripe"} and owners(2) == {"parallel"}
    assert SignOff.objects.filter(cohort=cohorts[1]).values("by").distinct().count() == 2
    cycle = cycle_progress(cohorts[1], today=date.today())
    assert cycle.days_total > 27 and cycle.days_clean == cycle.days_total  # the migrated cycle
    failing = [r for r in checklist_latest(cohorts[3]).values() if not r.passed]
    assert failing and all(r.method == "automated" for r in failing)
    assert get_user_model().objects.get(username="auditor").groups.get().name == "Billing auditor"
    counts = (ChecklistResult.objects.count(), AuditEntry.objects.count())
    _demo()
    assert (ChecklistResult.objects.count(), AuditEntry.objects.count()) == counts
