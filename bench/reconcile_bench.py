"""Reconciliation at scale: one run over 10,000 parallel-run accounts.

The legacy database is PostgreSQL (`rec_legacy`): one February invoice per account with its
lines (flat fee, ST usage for two accounts in three). Our database is PostgreSQL (`rec`,
migrated on first use). The Stripe side is served locally by a canned HTTP server in its own
process speaking Stripe's list format (`/v1/invoices` with `created[gte|lt]`, `limit`,
`starting_after`, `has_more`; `/v1/prices`, `/v1/products`): per account the Feb 1 cycle
invoice (February's fee in advance, January's usage in arrears) and the Mar 1 cycle invoice
(March's fee, February's usage), shaped as Stripe's own fixtures (`fixtures3.json`), lines
classified through the price catalog as subscription lines are. Ten accounts are billed one
cent off, so the run is `drift` with ten records.

A warm-up run comes first (the stand-in renders each page once and keeps it, so Stripe's own
serving time is not counted against ours). Each measured run is a forced new attempt of the
same date (`reconcile_run(force=True)`): Stripe read in full, both sides compared, 10,000
results and the drift records written. The figures are wall-clock seconds per phase (the
run's own `timings_ms`), the total, and the CPU time of this process during the run (the
stand-in and PostgreSQL run in other processes); the target is 10 s. On a shared machine
the wall-clock figures grow with the load average, which is printed with them.

Run: `.venv/bin/python bench/reconcile_bench.py [--accounts 10000] [--runs 3] [--reload]`.
The data is loaded once and kept (`--reload` rebuilds it).
"""

import argparse
import copy
import json
import multiprocessing
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_URL = "postgres://postgres@127.0.0.1:5432/{}"
DATABASE, LEGACY_DATABASE = "rec", "rec_legacy"
RUN_DATE = date(2026, 3, 15)  # service month February 2026, past the deadline
FIRST_ACCT = 700_000
OFF_BY_A_CENT = 10
TARGET_SECONDS = 10.0
FIXTURES = json.loads((ROOT / "tests/stripe_server/fixtures3.json").read_text())["resources"]


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def fee_minor(n: int) -> int:
    return (149_00, 299_00, 499_00, 1_200_00)[n % 4]


def st_minor(n: int) -> int:
    """February ST usage in cents, none for one account in three."""
    return 0 if n % 3 == 0 else 1_000 + (n * 7919) % 250_000


# --- the canned Stripe server (its own process) -----------------------------------------------


def _line(invoice_id: str, n: int, kind: str, amount: int, start: int, end: int) -> dict:
    line = copy.deepcopy(FIXTURES["line_item"])
    line.update(
        id=f"il_bench{n:07d}{kind}{start}",
        invoice=invoice_id,
        amount=amount,
        subtotal=amount,
        currency="usd",
        metadata={},
        period={"start": start, "end": end},
        quantity=1,
        parent={
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": f"sub_bench{n:07d}",
                "subscription_item": f"si_bench{n:07d}{kind}",
            },
        },
        pricing={
            "type": "price_details",
            "price_details": {"price": f"price_bench_{kind}", "product": f"prod_bench_{kind}"},
            "unit_amount_decimal": str(amount),
        },
    )
    return line


def _invoice(n: int, created: int, lines: list[dict]) -> dict:
    invoice = copy.deepcopy(FIXTURES["invoice"])
    invoice_id = f"in_bench{n:07d}{created}"
    for line in lines:
        line["invoice"] = invoice_id
    total = sum(line["amount"] for line in lines)
    invoice.update(
        id=invoice_id,
        customer=f"cus_bench{n:07d}",
        created=created,
        status="paid",
        billing_reason="subscription_cycle",
        currency="usd",
        total=total,
        subtotal=total,
        amount_due=total,
        amount_paid=total,
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": f"sub_bench{n:07d}"},
        },
        lines={
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
    )
    return invoice


def stripe_invoices(accounts: int) -> list[dict]:
    """Per account the Feb 1 and Mar 1 cycle invoices, newest first as Stripe lists them."""
    jan, feb, mar, apr = ts(2026, 1, 1), ts(2026, 2, 1), ts(2026, 3, 1), ts(2026, 4, 1)
    invoices = []
    for index in range(accounts):
        n = FIRST_ACCT + index
        off = 1 if index < OFF_BY_A_CENT else 0
        feb_st = st_minor(n) + (off if st_minor(n) else 0)
        feb_fee = fee_minor(n) + (0 if st_minor(n) else off)
        first = [_line("", n, "flat", feb_fee, feb, mar)]
        first.append(_line("", n, "ST", st_minor(n - 1), jan, feb))
        second = [_line("", n, "flat", fee_minor(n), mar, apr)]
        if st_minor(n):
            second.append(_line("", n, "ST", feb_st, feb, mar))
        invoices += [_invoice(n, feb + index, first), _invoice(n, mar + index, second)]
    invoices.sort(key=lambda invoice: invoice["created"], reverse=True)
    return invoices


def _catalog() -> dict[str, list[dict]]:
    prices, products = [], []
    for kind in ("flat", "ST"):
        price = copy.deepcopy(FIXTURES["price"])
        price.update(
            id=f"price_bench_{kind}", product=f"prod_bench_{kind}", metadata={"kind": kind}
        )
        product = copy.deepcopy(FIXTURES["product"])
        product.update(id=f"prod_bench_{kind}", metadata={"kind": kind})
        prices.append(price)
        products.append(product)
    return {"/v1/prices": prices, "/v1/products": products}


def serve_stripe(accounts: int, port_out) -> None:
    invoices = stripe_invoices(accounts)
    collections = {"/v1/invoices": invoices, **_catalog()}
    positions = {
        path: {obj["id"]: i for i, obj in enumerate(items)} for path, items in collections.items()
    }
    requests = {"count": 0}
    rendered: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            items = collections.get(split.path)
            if items is None or not self.headers.get("Authorization", "").startswith(
                "Bearer sk_test_"
            ):
                return self._send(
                    404, {"error": {"type": "invalid_request_error", "message": "no"}}
                )
            requests["count"] += 1
            # Pages are rendered once: Stripe's own serving time is not what is measured.
            if (data := rendered.get(self.path)) is not None:
                return self._write(data)
            limit = int(query.get("limit", 10))
            start = 0
            if after := query.get("starting_after"):
                start = positions[split.path][after] + 1
            gte, lt = int(query.get("created[gte]", 0)), int(query.get("created[lt]", 2**40))
            page = []
            index = start
            while index < len(items) and len(page) < limit + 1:
                if gte <= items[index].get("created", gte) < lt:
                    page.append(items[index])
                index += 1
            body = {
                "object": "list",
                "data": page[:limit],
                "has_more": len(page) > limit,
                "url": split.path,
            }
            rendered[self.path] = json.dumps(body).encode()
            self._write(rendered[self.path])

        def _send(self, status: int, body: dict) -> None:
            self._write(json.dumps(body).encode(), status)

        def _write(self, data: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_bench{requests['count']}")
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


# --- our side ---------------------------------------------------------------------------------


def databases_ensure() -> None:
    import psycopg

    with psycopg.connect(DB_URL.format("postgres"), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in (DATABASE, LEGACY_DATABASE):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def data_load(accounts: int, reload: bool) -> None:
    from decimal import Decimal

    from django.core.management import call_command

    from billing_project.money import minor_to_major
    from cohorts.models import Cohort, CohortMembership
    from metering.models import BillingAccount
    from reconciliation.legacy import (
        LegacyAccount,
        LegacyInvoice,
        LegacyInvoiceLine,
        legacy_schema_create,
    )
    from reconciliation.models import (
        DriftRecord,
        DriftRecordEvent,
        ReconciliationResult,
        ReconciliationRun,
    )
    from reconciliation.routers import legacy_writes_allowed

    call_command("migrate", verbosity=0, interactive=False)
    with legacy_writes_allowed():
        legacy_schema_create()
    ours = BillingAccount.objects.filter(acct_id__gte=FIRST_ACCT)
    have = (
        ours.count() == accounts
        and LegacyInvoice.objects.filter(account_id__gte=FIRST_ACCT).count() == accounts
    )
    if have and not reload:
        print(f"data: kept {accounts} accounts")
        return
    started = time.perf_counter()
    DriftRecordEvent.objects.all().delete()
    DriftRecord.objects.all().delete()
    ReconciliationResult.objects.all().delete()
    ReconciliationRun.objects.all().delete()
    CohortMembership.objects.all().delete()
    BillingAccount.objects.all().delete()
    cohort, _ = Cohort.objects.update_or_create(
        number=2,
        defaults={
            "name": "Flat + tiered impressions",
            "pricing_model": Cohort.PricingModel.FLAT_TIERED,
            "status": Cohort.Status.PARALLEL_RUN,
        },
    )
    numbers = range(FIRST_ACCT, FIRST_ACCT + accounts)
    BillingAccount.objects.bulk_create(
        [
            BillingAccount(
                acct_id=n,
                name=f"Bench account {n}",
                stripe_customer_id=f"cus_bench{n:07d}",
                billing_owner=BillingAccount.BillingOwner.PARALLEL,
                cohort=cohort,
            )
            for n in numbers
        ],
        batch_size=2000,
    )
    now = datetime.now(tz=UTC)
    CohortMembership.objects.bulk_create(
        [CohortMembership(cohort=cohort, account=a, joined_at=now) for a in ours],
        batch_size=2000,
    )
    month = date(2026, 2, 1)
    with legacy_writes_allowed():
        LegacyInvoiceLine.objects.filter(invoice__account_id__gte=FIRST_ACCT).delete()
        LegacyInvoice.objects.filter(account_id__gte=FIRST_ACCT).delete()
        LegacyAccount.objects.filter(acct_id__gte=FIRST_ACCT).delete()
        LegacyAccount.objects.bulk_create(
            [LegacyAccount(acct_id=n, acct_name=f"Bench {n}", created=now) for n in numbers],
            batch_size=2000,
        )
        invoices, lines = [], []
        for n in numbers:
            inv_uuid = f"bench-{n}-2026-02"
            amounts = {"flat": fee_minor(n), "ST": st_minor(n)}
            invoices.append(
                LegacyInvoice(
                    inv_uuid=inv_uuid,
                    account_id=n,
                    service_month=month,
                    total=minor_to_major(sum(amounts.values()), "usd"),
                    currency="usd",
                    status="paid",
                    created=now,
                )
            )
            for offset, (kind, amount) in enumerate(amounts.items()):
                if amount or kind == "flat":
                    lines.append(
                        LegacyInvoiceLine(
                            line_id=n * 10 + offset,
                            invoice_id=inv_uuid,
                            line_kind=kind,
                            quantity=1,
                            rate=Decimal(0),
                            amount=minor_to_major(amount, "usd"),
                        )
                    )
        LegacyInvoice.objects.bulk_create(invoices, batch_size=2000)
        LegacyInvoiceLine.objects.bulk_create(lines, batch_size=2000)
    print(f"data: loaded {accounts} accounts in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reload", action="store_true", help="Rebuild the data set.")
    args = parser.parse_args()

    ports: multiprocessing.Queue = multiprocessing.Queue()
    stripe_process = multiprocessing.Process(
        target=serve_stripe, args=(args.accounts, ports), daemon=True
    )
    stripe_process.start()
    port = ports.get(timeout=300)

    os.environ.update(
        DJANGO_SETTINGS_MODULE="billing_project.settings",
        DATABASE_URL=DB_URL.format(DATABASE),
        LEGACY_DATABASE_URL=DB_URL.format(LEGACY_DATABASE),
        LEGACY_DATABASE_WRITABLE="true",
        STRIPE_SECRET_KEY="sk_test_ReconcileBench0000000000000000",  # noqa: S106 (local stand-in)
        STRIPE_API_BASE=f"http://127.0.0.1:{port}",
        Q_SYNC="true",
        LOG_LEVEL="WARNING",
        SLACK_ALERTS_WEBHOOK_URL="",
        SLACK_BILLING_ALERTS_WEBHOOK_URL="",
        BILLING_ALERT_EMAILS="",
    )
    databases_ensure()
    import django

    django.setup()
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from reconciliation.models import DriftRecord
    from reconciliation.services import reconcile_run

    try:
        data_load(args.accounts, args.reload)
        warm = reconcile_run(run_date=RUN_DATE, force=True)
        print(
            f"warm-up run (the stand-in renders its pages): {warm.timings_ms['total'] / 1000:.2f} s"
        )
        totals, cpus = [], []
        print(
            f"{'run':>3}  {'status':<7}  {'checked':>7}  {'drift':>5}  {'stripe':>7}  "
            f"{'legacy':>7}  {'compare':>7}  {'write':>7}  {'total':>7}  {'our cpu':>7}  "
            f"{'queries':>7}"
        )
        for attempt in range(1, args.runs + 1):
            with (
                CaptureQueriesContext(connections["default"]) as ours,
                CaptureQueriesContext(connections["legacy"]) as legacy,
            ):
                started, cpu_started = time.perf_counter(), time.process_time()
                outcome = reconcile_run(run_date=RUN_DATE, force=True)
                seconds = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
            totals.append(seconds)
            cpus.append(cpu)
            t = outcome.timings_ms
            run = outcome.run
            print(
                f"{attempt:>3}  {run.status:<7}  {run.accounts_checked:>7}  "
                f"{run.accounts_drift:>5}  {t.get('stripe', 0) / 1000:>6.2f}s  "
                f"{t.get('legacy', 0) / 1000:>6.2f}s  {t.get('compare', 0) / 1000:>6.2f}s  "
                f"{t.get('write', 0) / 1000:>6.2f}s  {seconds:>6.2f}s  {cpu:>6.2f}s  "
                f"{len(ours) + len(legacy):>7}"
            )
            if run.status == "error":
                raise SystemExit(f"run failed: {run.error}")
        assert outcome.run.accounts_checked == args.accounts
        assert outcome.run.accounts_drift == min(OFF_BY_A_CENT, args.accounts)
        assert DriftRecord.objects.count() == min(OFF_BY_A_CENT, args.accounts)
        median = statistics.median(totals)
        print(
            f"{args.accounts} accounts, {outcome.run.stripe_invoices_read} Stripe invoices: "
            f"median {median:.2f} s, best {min(totals):.2f} s (target <= {TARGET_SECONDS:.0f} s: "
            f"{'met' if median <= TARGET_SECONDS else 'missed'}); this process's CPU median "
            f"{statistics.median(cpus):.2f} s; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} CPUs"
        )
    finally:
        stripe_process.terminate()
        stripe_process.join(timeout=10)


if __name__ == "__main__":
    main()
