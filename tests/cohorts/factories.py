"""Factories for cohort records and the reconciliation runs the zero-drift gate reads."""

from datetime import UTC, date, datetime

import factory
from factory.django import DjangoModelFactory

from cohorts.checklist import BY_KEY
from cohorts.checklist_models import ChecklistResult, SignOff
from reconciliation.models import DriftRecord, ReconciliationResult, ReconciliationRun
from tests.factories import FIXED_AT


class ChecklistResultFactory(DjangoModelFactory):
    """A stored result; `item` decides the phase and method (manual items get a note)."""

    class Meta:
        model = ChecklistResult

    round = factory.LazyAttribute(lambda o: o.cohort.round)
    item = "subscriptions"
    phase = factory.LazyAttribute(lambda o: BY_KEY[o.item].phase)
    method = factory.LazyAttribute(lambda o: BY_KEY[o.item].method)
    passed = True
    summary = "ok"
    note = factory.LazyAttribute(lambda o: "" if BY_KEY[o.item].automated else "confirmed")
    at = FIXED_AT


class SignOffFactory(DjangoModelFactory):
    class Meta:
        model = SignOff

    round = factory.LazyAttribute(lambda o: o.cohort.round)
    signed_at = FIXED_AT


class ReconciliationRunFactory(DjangoModelFactory):
    """A finished run of one cohort's scope for one day (clean unless told)."""

    class Meta:
        model = ReconciliationRun

    run_date = date(2026, 1, 1)
    service_month = factory.LazyAttribute(lambda o: date(o.run_date.year, o.run_date.month, 1))
    cohort_number = 1
    scope_key = factory.LazyAttribute(lambda o: f"cohort:{o.cohort_number}")
    attempt = 1
    trigger = ReconciliationRun.Trigger.SCHEDULE
    status = ReconciliationRun.Status.CLEAN
    legacy_deadline = factory.LazyAttribute(lambda o: o.run_date)
    started_at = factory.LazyAttribute(
        lambda o: datetime(o.run_date.year, o.run_date.month, o.run_date.day, 6, tzinfo=UTC)
    )
    finished_at = factory.LazyAttribute(lambda o: o.started_at)


class ReconciliationResultFactory(DjangoModelFactory):
    class Meta:
        model = ReconciliationResult

    acct_id = factory.LazyAttribute(lambda o: o.account.acct_id)
    cohort_number = factory.LazyAttribute(lambda o: o.run.cohort_number)
    service_month = factory.LazyAttribute(lambda o: o.run.service_month)
    currency = "usd"
    status = "clean"
    stripe_total_minor = 24_900
    legacy_total_minor = 24_900
    delta_minor = 0


class DriftRecordFactory(DjangoModelFactory):
    class Meta:
        model = DriftRecord

    acct_id = factory.LazyAttribute(lambda o: o.account.acct_id)
    cohort_number = factory.LazyAttribute(lambda o: o.account.cohort.number)
    service_month = date(2026, 1, 1)
    currency = "usd"
    stripe_total_minor = 24_901
    legacy_total_minor = 24_900
    delta_minor = 1
    reason = "amounts_differ"
    first_run = factory.SubFactory(
        ReconciliationRunFactory, status="drift", run_date=date(2026, 2, 10)
    )
    last_run = factory.SelfAttribute("first_run")
    first_detected_at = FIXED_AT
    last_detected_at = FIXED_AT
