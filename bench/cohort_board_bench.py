"""The cohort board and the zero-drift gate at scale.

Three cohorts of `--members` accounts each (6,000 by default); cohort 2 under parallel run with
a 31-day cycle reconciled every day (one day drift, with drift records), a failed delivery per
hundred accounts, the checklists stored. Measured: the board page rendered through the admin
(login, view, template; its SQL statements counted), the board's data alone (`board_cards`),
and the `migrated` gate evaluated for cohort 2 (`gate_problems`). Figures are wall-clock
milliseconds, median and worst of `--runs`.

Our database is PostgreSQL `coh` (migrated on first use, about two minutes), the legacy one
`coh_legacy`. Run: `.venv/bin/python bench/cohort_board_bench.py [--members 2000] [--runs 10]
[--reload]`. The data is loaded once and kept (`--reload` rebuilds it).
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_URL = "postgres://postgres@127.0.0.1:5432/{}"
DATABASE, LEGACY_DATABASE = "coh", "coh_legacy"
FIRST_ACCT = 5_000_000
CYCLE_START, CYCLE_END = date(2026, 1, 1), date(2026, 1, 31)


def databases_ensure() -> None:
    import psycopg

    with psycopg.connect(DB_URL.format("postgres"), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in (DATABASE, LEGACY_DATABASE):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def data_load(members: int, reload: bool) -> None:
    from django.core.management import call_command

    from cohorts import checklist
    from cohorts.checklist_models import ChecklistResult
    from cohorts.models import Cohort, CohortMembership
    from invoices.models import InvoiceDelivery, inv_uuid_for
    from metering.models import BillingAccount
    from reconciliation.legacy import legacy_schema_create
    from reconciliation.models import DriftRecord, ReconciliationResult, ReconciliationRun
    from reconciliation.routers import legacy_writes_allowed

    call_command("migrate", verbosity=0, interactive=False)
    with legacy_writes_allowed():
        legacy_schema_create()
    if BillingAccount.objects.filter(acct_id__gte=FIRST_ACCT).count() == 3 * members and not reload:
        print(f"data: kept {3 * members} accounts")
        return
    started = time.perf_counter()
    for model in (DriftRecord, ReconciliationResult, ReconciliationRun, InvoiceDelivery):
        model.objects.all().delete()
    CohortMembership.objects.all().delete()
    BillingAccount.objects.all().delete()
    now = datetime(2026, 1, 15, tzinfo=UTC)
    statuses = {1: "migrated", 2: "parallel_run", 3: "planned"}
    for number, status in statuses.items():
        cohort, _ = Cohort.objects.update_or_create(
            number=number,
            defaults={
                "name": f"Bench cohort {number}",
                "pricing_model": number,
                "status": status,
                "cycle_start": CYCLE_START if number < 3 else None,
                "cycle_end": CYCLE_END if number < 3 else None,
            },
        )
        first = FIRST_ACCT + (number - 1) * members
        accounts = BillingAccount.objects.bulk_create(
            [
                BillingAccount(
                    acct_id=n,
                    name=f"Bench account {n}",
                    stripe_customer_id=f"cus_bench{n:07d}",
                    billing_owner="parallel",
                    cohort=cohort,
                )
                for n in range(first, first + members)
            ],
            batch_size=2000,
        )
        CohortMembership.objects.bulk_create(
            [CohortMembership(cohort=cohort, account=a, joined_at=now) for a in accounts],
            batch_size=2000,
        )
        InvoiceDelivery.objects.bulk_create(
            [
                InvoiceDelivery(
                    stripe_invoice_id=f"in_bench{a.acct_id}",
                    inv_uuid=inv_uuid_for(f"in_bench{a.acct_id}"),
                    account=a,
                    state="failed" if i % 100 == 0 else "sent",
                    finalized_at=now,
                )
                for i, a in enumerate(accounts)
            ],
            batch_size=2000,
        )
        ChecklistResult.objects.filter(cohort=cohort).delete()
        ChecklistResult.objects.bulk_create(
            [
                ChecklistResult(
                    cohort=cohort,
                    round=1,
                    phase=item.phase,
                    item=item.key,
                    method=item.method,
                    passed=True,
                    summary="bench",
                    note="" if item.automated else "bench",
                    at=now,
                )
                for item in checklist.ITEMS
            ]
        )
        if number == 3:
            continue
        day = CYCLE_START
        while day <= CYCLE_END:
            drift = number == 2 and day.day == 17
            run = ReconciliationRun.objects.create(
                run_date=day,
                service_month=date(2025, 12, 1),
                scope_key=f"cohort:{number}",
                cohort_number=number,
                trigger="schedule",
                status="drift" if drift else "clean",
                legacy_deadline=day,
                started_at=now,
                finished_at=now,
            )
            ReconciliationResult.objects.bulk_create(
                [
                    ReconciliationResult(
                        run=run,
                        account=a,
                        acct_id=a.acct_id,
                        cohort_number=number,
                        service_month=run.service_month,
                        currency="usd",
                        status="drift" if drift and i < 10 else "clean",
                        stripe_total_minor=24_900 + (1 if drift and i < 10 else 0),
                        legacy_total_minor=24_900,
                        delta_minor=1 if drift and i < 10 else 0,
                    )
                    for i, a in enumerate(accounts)
                ],
                batch_size=5000,
            )
            if drift:
                DriftRecord.objects.bulk_create(
                    [
                        DriftRecord(
                            account=a,
                            acct_id=a.acct_id,
                            cohort_number=number,
                            service_month=run.service_month,
                            currency="usd",
                            stripe_total_minor=24_901,
                            legacy_total_minor=24_900,
                            delta_minor=1,
                            first_run=run,
                            last_run=run,
                            first_detected_at=now,
                            last_detected_at=now,
                        )
                        for a in accounts[:10]
                    ]
                )
            day += timedelta(days=1)
    print(f"data: loaded {3 * members} accounts in {time.perf_counter() - started:.1f}s")


def timed(label: str, runs: int, call) -> None:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    print(f"{label}: median {statistics.median(samples):.1f} ms, worst {max(samples):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000, help="Accounts per cohort (2000).")
    parser.add_argument("--runs", type=int, default=10, help="Measured repetitions (10).")
    parser.add_argument("--reload", action="store_true", help="Rebuild the data.")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = DB_URL.format(DATABASE)
    os.environ["LEGACY_DATABASE_URL"] = DB_URL.format(LEGACY_DATABASE)
    os.environ["LEGACY_DATABASE_WRITABLE"] = "true"  # the legacy schema is created here
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    databases_ensure()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from cohorts.gates import gate_problems
    from cohorts.models import Cohort
    from cohorts.selectors import board_cards

    data_load(args.members, args.reload)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-operator", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    today = date(2026, 2, 3)
    cohort = Cohort.objects.get(number=2)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/cohorts/cohort/board/")
    assert response.status_code == 200, response.status_code
    print(f"board page: {len(queries)} SQL statements, {len(response.content):,} bytes")
    reset_queries()
    timed(
        "board page (admin, rendered)",
        args.runs,
        lambda: client.get("/admin/cohorts/cohort/board/"),
    )
    timed("board data (board_cards)", args.runs, lambda: board_cards(today=today))
    problems = gate_problems(cohort, "migrated", today=today)
    print(f"migrated gate for cohort 2: {len(problems)} reason(s): {problems[:2]}")
    timed(
        "migrated gate (gate_problems)",
        args.runs,
        lambda: gate_problems(cohort, "migrated", today=today),
    )


if __name__ == "__main__":
    main()
