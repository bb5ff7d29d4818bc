"""`forecast_drift`: backtest a cohort's legacy invoices against the engine and Stripe's rules."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.money import format_money
from metering.forecast import forecast_drift
from metering.selectors import cohort_get


class Command(BaseCommand):
    help = (
        "Read-only backtest: recompute every legacy invoice line of the cohort's accounts for "
        "the last N full months from the legacy plans, compare with the legacy amounts and "
        "with Stripe's evaluation of the imported price, and list every account that would "
        "drift. Exits non-zero when one would."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cohort", type=int, required=True)
        parser.add_argument("--months", type=int, default=12, help="Full months back (12).")

    def handle(self, *args, cohort, months=12, **options):
        if months < 1 or months > 240:
            raise CommandError(f"--months must be between 1 and 240, not {months}")
        if cohort_get(cohort) is None:
            raise CommandError(f"--cohort: no cohort {cohort}")
        report = forecast_drift(
            cohort=cohort, months=months, progress=lambda m: self.stdout.write(f"  {m}")
        )
        for d in report.drifts:
            amounts = ", ".join(
                f"{label} {format_money(value, 'usd') if value is not None else 'n/a'}"
                for label, value in (
                    ("legacy", d.legacy_minor),
                    ("engine", d.engine_minor),
                    ("stripe", d.stripe_minor),
                )
            )
            detail = f" ({d.detail})" if d.detail else ""
            self.stdout.write(
                f"drift: account {d.acct_id} {d.service_month:%Y-%m} {d.kind}{detail}: {amounts}"
            )
        accounts = report.drifting_accounts
        self.stdout.write(
            f"cohort {cohort}, {report.months[0]:%Y-%m}..{report.months[-1]:%Y-%m}: "
            f"{report.accounts} accounts, {report.invoices} invoices, {report.lines} lines; "
            f"{len(report.drifts)} drifts on {len(accounts)} accounts"
            + (f": {', '.join(map(str, accounts))}" if accounts else "")
        )
        if accounts:
            raise CommandError(
                f"{len(accounts)} accounts would drift: {', '.join(map(str, accounts))}"
            )
