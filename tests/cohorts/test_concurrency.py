"""Two operators at the same moment, on PostgreSQL: one transition, one sign-off per user."""

import threading

import pytest
from django.db import connections

from billing_project.errors import BillingError
from cohorts import checklist
from cohorts.checklist_models import AuditEntry, SignOff
from cohorts.services import cohort_sign_off
from cohorts.transitions import cohort_mark_ready

from .conftest import CYCLE_END, CYCLE_START, cohort_with_members, pass_items


def _together(*calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except BillingError as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_ready_transitions_move_the_cohort_once(operator, operator2):
    cohort = cohort_with_members()
    pass_items(cohort, checklist.PRE)
    results = _together(
        lambda: cohort_mark_ready(cohort=cohort, by=operator),
        lambda: cohort_mark_ready(cohort=cohort, by=operator2),
    )
    refused = [r for r in results if isinstance(r, BillingError)]
    assert len(refused) == 1
    assert "it is ready; only planned can move there" in refused[0].message
    assert AuditEntry.objects.filter(cohort=cohort, action="transition").count() == 1
    assert AuditEntry.objects.filter(cohort=cohort, action="transition_refused").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_user_signing_twice_at_once_counts_once(operator):
    cohort = cohort_with_members(
        status="parallel_run", cycle_start=CYCLE_START, cycle_end=CYCLE_END
    )
    results = _together(*[lambda: cohort_sign_off(cohort=cohort, by=operator)] * 3)
    assert sorted(created for _, created in results) == [False, False, True]
    assert SignOff.objects.filter(cohort=cohort).count() == 1
    assert AuditEntry.objects.filter(cohort=cohort, action="sign_off").count() == 1
