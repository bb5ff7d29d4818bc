"""`usage_quantity_check`: our usage ledger against Stripe's meter summaries for a month."""

from argparse import ArgumentParser, ArgumentTypeError
from collections import Counter
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from metering.models import BillingAccount
from metering.usage_quantity import CheckStatus, usage_quantity_check


def _month(text: str) -> date:
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError as exc:
        raise ArgumentTypeError(f"not a month in YYYY-MM form: {text!r}") from exc


class Command(BaseCommand):
    help = (
        "Compare, per account and usage type, the month's usage in our ledger with the "
        "aggregated value of Stripe's meter events. Read-only. With --strict, exits non-zero "
        "when a line is a mismatch."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--month", type=_month, required=True, help="YYYY-MM (UTC).")
        parser.add_argument("--cohort", type=int, help="Only this cohort's accounts.")
        parser.add_argument(
            "--acct-id", type=int, action="append", default=[], help="Only these acct_ids."
        )
        parser.add_argument("--all", action="store_true", help="Print matching lines too.")
        parser.add_argument("--strict", action="store_true", help="Exit 1 on any mismatch.")

    def handle(self, *args, **options) -> None:
        accounts = BillingAccount.objects.order_by("acct_id")
        if options["cohort"] is not None:
            accounts = accounts.filter(cohort__number=options["cohort"])
        if options["acct_id"]:
            accounts = accounts.filter(acct_id__in=options["acct_id"])
            missing = set(options["acct_id"]) - set(accounts.values_list("acct_id", flat=True))
            if missing:
                raise CommandError(f"no billing account for acct_id {sorted(missing)}")
        if not options["acct_id"] and options["cohort"] is None:
            accounts = accounts.filter(usage_records__period__gte=options["month"]).distinct()
        verbose = options["verbosity"] >= 1

        def progress(done: int, total: int) -> None:
            if verbose and (done == total or done % 25 == 0):
                self.stderr.write(f"  … {done}/{total} accounts")

        lines = usage_quantity_check(month=options["month"], accounts=accounts, progress=progress)
        shown = [line for line in lines if options["all"] or line.status != CheckStatus.MATCH]
        if shown:
            self.stdout.write(
                f"{'acct_id':>8} {'type':<4} {'status':<11} {'ledger':>14} {'stripe':>14} "
                f"{'pending':>10} {'failed':>10} {'too_late':>10}  customer / meter"
            )
        for line in shown:
            stripe_total = "—" if line.stripe is None else f"{line.stripe:,}"
            self.stdout.write(
                f"{line.acct_id:>8} {line.usage_type:<4} {line.status:<11} {line.ledger:>14,} "
                f"{stripe_total:>14} {line.pending:>10,} {line.failed:>10,} "
                f"{line.too_late:>10,}  {line.customer_id or '—'} / {line.meter_id or '—'}"
            )
        counts = Counter(line.status for line in lines)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        self.stdout.write(
            f"{options['month']:%Y-%m}: {len(lines)} lines checked ({summary or 'no accounts'})"
        )
        if options["strict"] and counts.get(CheckStatus.MISMATCH):
            raise CommandError(f"{counts[CheckStatus.MISMATCH]} line(s) differ from Stripe")
