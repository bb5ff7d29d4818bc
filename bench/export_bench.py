"""Invoice history export at scale: 1,000,000 synthetic legacy invoices on PostgreSQL exported
to SeaweedFS (standing in for R2) by `manage.py export_invoice_history`.

The legacy tables are created from `reconciliation/legacy_schema.sql` in the database
`exp_bench` and filled server-side (`INSERT … SELECT generate_series`, no rows pass through
Python): `--invoices` invoices spread over `--months` service months (one per account and
month), each with `--lines` lines (a flat fee and usage lines). The same database holds the
app's export tables (only the `exports` migrations are applied). SeaweedFS is started on a
free loopback port and stopped at the end.

Phases, each a separate `manage.py` process (its wall time and peak RSS are measured; peak RSS
is the child's `ru_maxrss`):
1. export: every month written (gzip CSV, manifest per year, each file read back to check it);
2. rerun: nothing changed, nothing written (each month's stored file and database content are
   hashed again);
3. verify: every file re-read from storage and checked against its manifest and the database.

Targets (export): <= 60 s and <= 200 MB peak RSS. Run:
`.venv/bin/python bench/export_bench.py [--invoices 1000000] [--months 168] [--lines 2]
[--keep-db] [--export-only]`. The data is reloaded only when its size differs from the request.
Exits non-zero when a phase fails or the export's row counts differ from the database's, not on a
missed target.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import django
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
django.setup()  # only to read the legacy schema; the work happens in manage.py processes

from reconciliation.legacy import legacy_schema_statements
from tests.harness.seaweed import SeaweedS3

DB_NAME = "exp_bench"
SERVER = "postgres://postgres@127.0.0.1:5432"
BUCKET = "invoices-bench"
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key-0000000000000000"  # noqa: S105 (a throwaway local server)
TARGET_SECONDS = 60
TARGET_MB = 200


def _connect(dbname: str) -> psycopg.Connection:
    return psycopg.connect(f"{SERVER}/{dbname}", autocommit=True)


def database_prepare(*, invoices: int, months: int, lines: int) -> None:
    with _connect("postgres") as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    with _connect(DB_NAME) as conn:
        for statement in legacy_schema_statements():
            conn.execute(statement)
        have = conn.execute("SELECT count(*) FROM billing_invoice").fetchone()[0]
        have_lines = conn.execute("SELECT count(*) FROM billing_invoice_line").fetchone()[0]
        if have == invoices and have_lines == invoices * lines:
            print(f"legacy data in place: {have:,} invoices, {have_lines:,} lines")
            return
        started = time.monotonic()
        per_month = -(-invoices // months)
        conn.execute("TRUNCATE billing_invoice_line, billing_invoice, account CASCADE")
        conn.execute(
            """INSERT INTO account (acct_id, acct_name, payment_customer_id, created)
               SELECT a, 'Account ' || a, 'cus_bench' || a, TIMESTAMP '2010-01-01'
               FROM generate_series(1, %s) AS a""",
            [per_month],
        )
        # Invoice i: account 1 + i % per_month, month i / per_month from 2012-01.
        conn.execute(
            """INSERT INTO billing_invoice (inv_uuid, acct_id, payment_customer_id,
                   stripe_invoice_id, service_month, total, currency, status, created)
               SELECT md5('inv' || i)::uuid::text, 1 + i %% %(per)s,
                      'cus_bench' || (1 + i %% %(per)s), 'in_bench' || i,
                      (DATE '2012-01-01' + (i / %(per)s) * INTERVAL '1 month')::date,
                      (149.00 + (i %% 1000) * 0.01) + ((i %% 7919) * 0.37),
                      'usd', (ARRAY['paid','paid','paid','unpaid','failed'])[1 + i %% 5],
                      TIMESTAMP '2012-02-01 09:00' + (i / %(per)s) * INTERVAL '1 month'
                          + (i %% 86400) * INTERVAL '1 second'
               FROM generate_series(0, %(n)s - 1) AS i""",
            {"per": per_month, "n": invoices},
        )
        # Line 0: flat fee; lines 1..: ST/RM/CV usage; the amounts add up to the total.
        conn.execute(
            """INSERT INTO billing_invoice_line (line_id, inv_uuid, line_kind, description,
                   quantity, rate, amount)
               SELECT i * %(lines)s + l, md5('inv' || i)::uuid::text,
                      CASE WHEN l = 0 THEN 'flat'
                           ELSE (ARRAY['ST','RM','CV'])[1 + (l - 1) %% 3] END,
                      CASE WHEN l = 0 THEN 'Adventive platform subscription'
                           ELSE 'Impressions, month ' || (i / %(per)s) END,
                      CASE WHEN l = 0 THEN 1 ELSE 1000 * (i %% 7919) END,
                      CASE WHEN l = 0 THEN 149.00 ELSE 0.370000 END,
                      CASE WHEN l = 0 THEN 149.00 + (i %% 1000) * 0.01
                           WHEN l = 1 THEN (i %% 7919) * 0.37 ELSE 0 END
               FROM generate_series(0, %(n)s - 1) AS i, generate_series(0, %(lines)s - 1) AS l""",
            {"per": per_month, "n": invoices, "lines": lines},
        )
        conn.execute("ANALYZE")
        print(
            f"loaded {invoices:,} invoices and {invoices * lines:,} lines over {months} months "
            f"in {time.monotonic() - started:.1f}s"
        )


def _env(s3: SeaweedS3) -> dict[str, str]:
    url = f"{SERVER}/{DB_NAME}"
    return {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": url,
        "LEGACY_DATABASE_URL": url,
        "LEGACY_DATABASE_WRITABLE": "false",
        "R2_INVOICE_BUCKET": BUCKET,
        "R2_ENDPOINT_URL": s3.endpoint_url,
        "R2_ACCESS_KEY_ID": ACCESS_KEY,
        "R2_SECRET_ACCESS_KEY": SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }


def _manage(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Run `manage.py args`: (wall seconds, the process's own peak RSS in MB, its output)."""
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        output = process.stdout.read()
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        print(output[-3000:])
        raise SystemExit(f"manage.py {' '.join(args)} failed ({process.returncode})")
    return seconds, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=168)
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true", help="Keep exp_bench afterwards.")
    parser.add_argument("--export-only", action="store_true", help="Skip the rerun and verify.")
    args = parser.parse_args()

    database_prepare(invoices=args.invoices, months=args.months, lines=args.lines)
    with SeaweedS3(access_key=ACCESS_KEY, secret_key=SECRET_KEY) as s3:
        s3.create_bucket(BUCKET)
        env = _env(s3)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "exports", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        with _connect(DB_NAME) as conn:
            conn.execute(
                "TRUNCATE exports_exportfile, exports_exportrun, exports_historymonth, "
                "exports_legacypdfcopy"
            )
        results = {}
        phases = (("export", ()), ("rerun", ()), ("verify", ("--verify",)))
        for phase, extra in phases[:1] if args.export_only else phases:
            seconds, peak_mb, output = _manage(env, "export_invoice_history", *extra)
            results[phase] = (seconds, peak_mb)
            last_line = output.strip().splitlines()[-1]
            print(f"{phase:>6}: {seconds:6.1f}s  peak RSS {peak_mb:6.1f} MB  | {last_line}")
        client = s3.client()
        objects = [
            item
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])
        ]
        files = [item for item in objects if item["Key"].endswith(".csv.gz")]
        manifests = [item["Key"] for item in objects if item["Key"].endswith("manifest.json")]
        invoices = sum(
            entry["invoices"]
            for key in manifests
            for entry in json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())[
                "entries"
            ].values()
        )
        size_mb = sum(item["Size"] for item in files) / 1e6
        print(
            f"{len(files)} files, {size_mb:.1f} MB compressed, {invoices:,} invoices in manifests"
        )
        export_seconds, export_mb = results["export"]
        time_ok = "met" if export_seconds <= TARGET_SECONDS else "MISSED"
        memory_ok = "met" if export_mb <= TARGET_MB else "MISSED"
        print(
            f"export: {args.invoices / export_seconds:,.0f} invoices/s; "
            f"target <= {TARGET_SECONDS}s: {time_ok}, <= {TARGET_MB} MB: {memory_ok}"
        )
        if invoices != args.invoices:
            raise SystemExit(f"manifests count {invoices:,} invoices, expected {args.invoices:,}")
    if not args.keep_db:
        with _connect("postgres") as admin:
            admin.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
