from collections import Counter, defaultdict
from datetime import date, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from billing_project.models import Alert, BillingEvent, WorkerHeartbeat
from cohorts.models import Cohort, CohortMembership
from metering.models import BillingAccount
from reconciliation.demo import ROUNDING_DRIFT_ACCT_ID, ROUNDING_DRIFT_MINOR, demo_months
from reconciliation.legacy import (
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyManagedServiceJob,
    LegacyPlanSub,
    LegacyPlanUsage,
)
from tests import factories

both_databases = pytest.mark.django_db(databases=["default", "legacy"])

# The demo builds its months and cycles from today.
pytestmark = pytest.mark.calendar

COUNTED = (
    Cohort,
    CohortMembership,
    BillingAccount,
    BillingEvent,
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyPlanSub,
    LegacyPlanUsage,
    LegacyManagedServiceJob,
    get_user_model(),
)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def _demo(**options) -> str:
    """The demo's data steps; the billing cycle through Stripe is tested on its own."""
    out = StringIO()
    options.setdefault("skip", ["invoice delivery"])
    call_command("billing_demo", accounts=9, months=3, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


@both_databases
def test_demo_ends_with_cohort_1_migrated_2_in_parallel_run_and_3_planned(debug):
    _demo()
    cohorts = {c.number: c for c in Cohort.objects.all()}
    assert sorted(cohorts) == [1, 2, 3]
    assert [cohorts[n].pricing_model for n in (1, 2, 3)] == [1, 2, 3]
    assert [cohorts[n].status for n in (1, 2, 3)] == ["migrated", "parallel_run", "planned"]
    last_month_end = date.today().replace(day=1) - timedelta(days=1)
    assert cohorts[1].cycle_start == last_month_end.replace(day=1)
    assert cohorts[1].cycle_end == last_month_end
    assert cohorts[3].cycle_start is None


@both_databases
def test_demo_links_a_billing_account_to_every_legacy_account(debug):
    _demo()
    legacy = {a.acct_id: a for a in LegacyAccount.objects.all()}
    accounts = {a.acct_id: a for a in BillingAccount.objects.all()}
    assert len(legacy) == 9
    assert accounts.keys() == legacy.keys()
    for acct_id, account in accounts.items():
        assert account.name == legacy[acct_id].acct_name
        assert account.billing_email == legacy[acct_id].billing_email
        assert account.stripe_customer_id == legacy[acct_id].payment_customer_id
        assert account.stripe_customer_id.startswith("cus_")


@both_databases
def test_demo_invoices_one_per_account_and_month_totalling_their_lines(debug):
    _demo()
    invoices = list(LegacyInvoice.objects.prefetch_related("lines"))
    assert len(invoices) == 27
    months = demo_months(today=date.today(), months=3)
    assert Counter((inv.account_id, inv.service_month) for inv in invoices) == {
        (acct_id, month): 1
        for acct_id in LegacyAccount.objects.values_list("acct_id", flat=True)
        for month in months
    }
    for invoice in invoices:
        lines = list(invoice.lines.all())
        assert lines, invoice
        assert invoice.total_minor == sum(line.amount_minor for line in lines)
        assert invoice.payment_customer_id == invoice.account.payment_customer_id
        assert sum(line.line_kind == "flat" for line in lines) == 1


@both_databases
def test_demo_usage_lines_use_the_tier_strictly_above_the_quantity(debug):
    _demo()
    tiers: dict[tuple[int, str], list[tuple[int | None, object]]] = {}
    for usage in LegacyPlanUsage.objects.all():
        tiers.setdefault((usage.account_id, usage.usage_type), []).append(
            (usage.usage_max, usage.usage_rate)
        )
    lines = LegacyInvoiceLine.objects.filter(line_kind__in=["ST", "RM", "CV"]).select_related(
        "invoice"
    )
    assert lines
    above_tier = defaultdict(list)
    for line in lines:
        ladder = tiers[(line.invoice.account_id, line.line_kind)]
        closed = sorted((ceiling, rate) for ceiling, rate in ladder if ceiling is not None)
        open_rate = [rate for ceiling, rate in ladder if ceiling is None]
        expected = next((rate for ceiling, rate in closed if line.quantity < ceiling), None)
        assert line.rate == (expected if expected is not None else open_rate[0])
        by_tier = (line.quantity * int(line.rate * 10**6) + 5 * 10**6) // 10**7
        if line.amount_minor != by_tier:
            above_tier[(line.invoice.account_id, line.invoice.service_month)].append(
                line.amount_minor - by_tier
            )
    # The one deliberate rounding quirk: one line a month, one cent, one account.
    quirk_months = LegacyInvoice.objects.filter(account_id=ROUNDING_DRIFT_ACCT_ID).values_list(
        "service_month", flat=True
    )
    assert len(quirk_months) == 3
    assert dict(above_tier) == {
        (ROUNDING_DRIFT_ACCT_ID, month): [ROUNDING_DRIFT_MINOR] for month in quirk_months
    }


@both_databases
def test_demo_puts_every_account_in_exactly_one_open_cohort_by_pricing_model(debug):
    _demo()
    open_memberships = Counter(
        CohortMembership.objects.filter(left_at__isnull=True).values_list("account_id", flat=True)
    )
    assert open_memberships == {pk: 1 for pk in BillingAccount.objects.values_list("pk", flat=True)}
    managed = set(LegacyManagedServiceJob.objects.values_list("account_id", flat=True))
    tiered = set(LegacyPlanUsage.objects.values_list("account_id", flat=True))
    for account in BillingAccount.objects.select_related("cohort"):
        membership = CohortMembership.objects.get(account=account, left_at__isnull=True)
        assert membership.cohort == account.cohort
        expected = 3 if account.acct_id in managed else 2 if account.acct_id in tiered else 1
        assert account.cohort.number == expected
        assert account.billing_owner == {1: "stripe", 2: "parallel", 3: "legacy"}[expected]
    assert Counter(BillingAccount.objects.values_list("cohort__number", flat=True)) == {
        1: 3,
        2: 4,
        3: 2,
    }


@both_databases
def test_running_the_demo_twice_changes_no_counts_and_no_data(debug):
    _demo()
    counts = _counts()
    invoices = list(LegacyInvoice.objects.values_list("inv_uuid", "total", "status"))
    lines = list(LegacyInvoiceLine.objects.values_list("line_id", "quantity", "amount"))
    out = _demo()
    assert _counts() == counts
    assert list(LegacyInvoice.objects.values_list("inv_uuid", "total", "status")) == invoices
    assert list(LegacyInvoiceLine.objects.values_list("line_id", "quantity", "amount")) == lines
    assert "existing password unchanged" in out


@both_databases
def test_a_different_seed_gives_different_data(debug):
    _demo()
    totals = list(LegacyInvoice.objects.values_list("total", flat=True))
    _demo(seed=7)
    assert list(LegacyInvoice.objects.values_list("total", flat=True)) != totals


@both_databases
def test_the_demo_prints_a_line_per_step_and_the_admin_login(debug):
    out = _demo()
    steps = [line for line in out.splitlines() if line.startswith("[")]
    total = len(steps)
    assert total >= 3
    assert f"[1/{total}] cohorts: 3 cohorts" in out
    assert f"[2/{total}] legacy billing database: 9 legacy accounts" in out
    assert f"[3/{total}] billing accounts: 9 billing accounts (9 new" in out
    assert "http://127.0.0.1:8000/admin/" in out
    password = out.split("login: admin / ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)


@both_databases
def test_an_admin_password_option_sets_the_password(debug):
    get_user_model().objects.create_user(username="admin", password="before")
    out = _demo(admin_password="demo-Passw0rd!")
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password("demo-Passw0rd!")
    assert admin.is_superuser
    assert "demo-Passw0rd!" not in out


@both_databases
def test_the_admin_password_comes_from_the_environment(debug, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "from-the-Env-42")
    _demo()
    assert get_user_model().objects.get(username="admin").check_password("from-the-Env-42")


@both_databases
def test_a_dry_run_lists_the_steps_and_writes_nothing(debug):
    out = _demo(dry_run=True)
    assert "cohorts" in out
    assert "legacy billing database" in out
    assert "billing accounts" in out
    assert set(_counts().values()) == {0}


@both_databases
def test_the_demo_refuses_to_run_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        _demo()
    assert set(_counts().values()) == {0}


@both_databases
def test_force_runs_the_demo_with_debug_off(settings):
    settings.DEBUG = False
    _demo(force=True)
    assert BillingAccount.objects.count() == 9


@both_databases
def test_invalid_sizes_are_refused(debug):
    with pytest.raises(CommandError, match="between 1 and 5000"):
        call_command("billing_demo", "--accounts", "0", stdout=StringIO())


@pytest.mark.parametrize(
    "factory_class",
    [
        factories.BillingAccountFactory,
        factories.CohortFactory,
        factories.CohortMembershipFactory,
        factories.BillingEventFactory,
        factories.AlertFactory,
        factories.WorkerHeartbeatFactory,
        factories.LegacyAccountFactory,
        factories.LegacyInvoiceFactory,
        factories.LegacyInvoiceLineFactory,
        factories.LegacyPlanSubFactory,
        factories.LegacyPlanUsageFactory,
        factories.LegacyManagedServiceJobFactory,
    ],
)
@both_databases
def test_each_factory_builds_and_saves_to_its_database(factory_class):
    model = factory_class._meta.model
    database = factory_class._meta.database
    built = factory_class.build()
    assert built.pk is None or not model.objects.using(database).filter(pk=built.pk).exists()
    saved = factory_class.create()
    assert model.objects.using(database).filter(pk=saved.pk).exists()
    assert database == ("legacy" if model._meta.db_table in _LEGACY_TABLES else "default")


_LEGACY_TABLES = {
    "account",
    "billing_invoice",
    "billing_invoice_line",
    "account_plan_sub",
    "account_plan_usage",
    "managed_service_job",
}


@both_databases
def test_factory_money_is_explicit_and_traits_set_states():
    line = factories.LegacyInvoiceLineFactory()
    assert line.invoice.total_minor == 12_345
    assert line.amount_minor == 12_345
    assert factories.LegacyInvoiceFactory(unpaid=True).status == "unpaid"
    assert factories.BillingAccountFactory(parallel=True).billing_owner == "parallel"
    assert factories.BillingAccountFactory(stripe=True).is_ours_to_deliver
    assert not factories.BillingAccountFactory().is_ours_to_deliver
    membership = factories.CohortMembershipFactory(cohort__parallel_run=True)
    assert membership.account.cohort == membership.cohort
    assert membership.cohort.status == "parallel_run"
    assert factories.CohortFactory(number=2).number == 2
    assert isinstance(factories.AlertFactory(), Alert)
    assert factories.WorkerHeartbeatFactory(name="qcluster").name == "qcluster"
    assert WorkerHeartbeat.objects.filter(name="qcluster").count() == 1


@pytest.mark.django_db(databases=["default", "legacy"])
def test_demo_bills_parallel_accounts_through_the_stripe_compatible_server(
    debug, stripe_server, django_capture_on_commit_callbacks, s3_bucket
):
    from invoices.models import InvoiceDelivery

    stripe_server.reset()
    stripe_server.webhooks.auto = False
    with django_capture_on_commit_callbacks(execute=True):
        out = _demo(skip=[])
    assert "invoice delivery: billed" in out
    # Cohort 1 was in parallel run when the delivery step billed; later steps migrate it.
    parallel = BillingAccount.objects.filter(cohort__number=1)
    deliveries = InvoiceDelivery.objects.filter(billing_reason="subscription_cycle")
    assert deliveries.count() == min(parallel.count(), 6)
    assert set(deliveries.values_list("state", flat=True)) == {"sent"}
    assert all(d.account.stripe_customer_id.startswith("cus_") for d in deliveries)
    again = _demo(skip=[])
    assert "kept" in again
    # This month's usage for cohort 2 went through the ledger and the outbox to the meters.
    from metering.usage_models import UsageRevision

    assert "usage:" in out and "0 failed" in out
    revisions = UsageRevision.objects.all()
    assert revisions.exists()
    assert set(revisions.values_list("state", flat=True)) == {"sent"}
    identifiers = {e["id"] for e in stripe_server.store.all("billing.meter_event")}
    assert set(revisions.values_list("identifier", flat=True)) <= identifiers
    assert "0 new" in again.split("usage:")[1].splitlines()[0]


@pytest.mark.django_db
def test_demo_refuses_an_unknown_step_name(debug):
    with pytest.raises(CommandError, match="no step named bogus"):
        call_command("billing_demo", skip=["bogus"], stdout=StringIO())
