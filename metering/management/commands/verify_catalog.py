"""`verify_catalog`: read-only check that each account's Stripe subscription bills its plan."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.stripe_api import StripeApiError
from metering.selectors import cohort_get
from metering.verification import catalog_verify


class Command(BaseCommand):
    help = (
        "Read-only: per account, the Stripe subscription exists, its flat price equals the "
        "legacy sub_rate and its metered tiers equal the legacy tiers. Lists findings with "
        "Stripe ids; exits non-zero when there are any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cohort", type=int, help="Only this cohort's accounts.")

    def handle(self, *args, cohort=None, **options):
        if cohort is not None and cohort_get(cohort) is None:
            raise CommandError(f"--cohort: no cohort {cohort}")
        try:
            report = catalog_verify(cohort=cohort, progress=lambda m: self.stdout.write(f"  {m}"))
        except StripeApiError as exc:
            raise CommandError(f"Stripe refused: {exc.message}") from exc
        for finding in report.findings:
            self.stdout.write(f"finding: {finding}")
        accounts = len({f.acct_id for f in report.findings})
        self.stdout.write(
            f"{report.accounts} accounts checked; {len(report.findings)} findings "
            f"on {accounts} accounts"
        )
        if not report.clean:
            raise CommandError(f"{len(report.findings)} findings (listed above)")
        self.stdout.write("catalog clean")
