"""`reconcile`: reconcile one day's service month now (a backfill counts like the schedule)."""

from argparse import ArgumentParser, ArgumentTypeError
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import BillingError
from billing_project.money import format_money
from reconciliation.models import ReconciliationRun
from reconciliation.services import RunOutcome, reconcile_run

TABLE_ROWS = 50


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from exc
    if not 2000 <= day.year <= 2100:
        raise ArgumentTypeError(f"the year must be 2000–2100: {text!r}")
    return day


def _cohort(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ArgumentTypeError(f"not a cohort number: {text!r}")
    return int(text)


class Command(BaseCommand):
    help = (
        "Reconcile the service month before DATE's month: Stripe lines of our invoices against "
        "the legacy billing_invoice totals, per account, in minor units. Runs once per date and "
        "scope; --force starts a new attempt. Exits non-zero when the run is an error."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--date", type=_day, required=True, help="The run date, YYYY-MM-DD (UTC)."
        )
        parser.add_argument("--cohort", type=_cohort, help="Only this cohort's accounts.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Compare and print; record and alert nothing."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though this date was already reconciled (recorded as a new attempt).",
        )

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]

        def progress(message: str) -> None:
            if verbosity >= 1:
                self.stderr.write(f"  … {message}")

        try:
            outcome = reconcile_run(
                run_date=options["date"],
                cohort_number=options["cohort"],
                trigger=ReconciliationRun.Trigger.COMMAND,
                force=options["force"],
                dry_run=options["dry_run"],
                requested_by="manage.py reconcile",
                progress=progress,
            )
        except BillingError as exc:  # already ran, or no such cohort
            raise CommandError(exc.message) from exc
        self._summary(outcome, dry_run=options["dry_run"])
        if outcome.status == ReconciliationRun.Status.ERROR:
            raise CommandError(f"reconciliation failed: {outcome.error}")

    def _summary(self, outcome: RunOutcome, *, dry_run: bool) -> None:
        period = outcome.period
        rows = sorted(
            outcome.compared,
            key=lambda r: (r.status == "clean", -abs(r.delta_minor), r.account.acct_id),
        )
        if rows:
            self.stdout.write(
                f"{'acct_id':>8}  {'cohort':>6}  {'status':<8}  {'stripe':>14}  {'legacy':>14}  "
                f"{'delta':>8}  reason / kinds"
            )
        for row in rows[:TABLE_ROWS]:
            cohort = "-" if row.cohort_number is None else str(row.cohort_number)
            detail = row.reason + (f" [{', '.join(row.drift_kinds)}]" if row.drift_kinds else "")
            self.stdout.write(
                f"{row.account.acct_id:>8}  {cohort:>6}  {row.status:<8}  "
                f"{format_money(row.stripe_total_minor, row.currency):>14}  "
                f"{format_money(row.legacy_total_minor, row.currency):>14}  "
                f"{row.delta_minor:>+8d}  {detail}"
            )
        if len(rows) > TABLE_ROWS:
            self.stdout.write(
                f"… {len(rows) - TABLE_ROWS} more accounts (all clean or listed above)"
            )
        run = (
            "dry run, nothing recorded"
            if dry_run
            else f"run {outcome.run.pk}, attempt {outcome.run.attempt}"
        )
        style = {
            "clean": self.style.SUCCESS,
            "pending": self.style.WARNING,
            "drift": self.style.ERROR,
            "error": self.style.ERROR,
        }.get(outcome.status, str)
        self.stdout.write(
            style(
                f"{outcome.scope} {period.run_date} (service month {period.service_month:%Y-%m}, "
                f"deadline {period.deadline}): {outcome.status.upper()} — "
                f"{len(outcome.compared)} checked, {outcome.count('clean')} clean, "
                f"{outcome.count('drift')} drift, {outcome.count('pending')} pending ({run})"
            )
        )
        if outcome.error:
            self.stdout.write(self.style.ERROR(outcome.error))
