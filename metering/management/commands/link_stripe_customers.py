"""`link_stripe_customers`: link billing accounts to their existing Stripe customers."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.stripe_api import StripeApiError
from metering.locks import RunInProgress
from metering.selectors import account_list, cohort_get
from metering.services import CustomerLinkError, account_link_customer


class Command(BaseCommand):
    help = (
        "Link each billing account to its existing Stripe customer (the legacy "
        "payment_customer_id), writing metadata.acct_id where missing; create a customer only "
        "for an account that has none. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cohort", type=int, help="Only this cohort's accounts.")
        parser.add_argument("--dry-run", action="store_true", help="List the accounts only.")

    def handle(self, *args, cohort=None, dry_run=False, **options):
        if cohort is not None and cohort_get(cohort) is None:
            raise CommandError(f"--cohort: no cohort {cohort}")
        accounts = list(account_list(cohort=cohort))
        outcomes: dict[str, int] = {}
        errors = []
        for index, account in enumerate(accounts, start=1):
            if dry_run:
                self.stdout.write(
                    f"would link account {account.acct_id} "
                    f"({account.stripe_customer_id or 'customer from the legacy account'})"
                )
                continue
            try:
                result = account_link_customer(account=account)
            except (CustomerLinkError, RunInProgress, StripeApiError) as exc:
                errors.append(str(exc))
                self.stderr.write(f"error: {exc}")
                continue
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            self.stdout.write(
                f"  {index}/{len(accounts)} account {result.acct_id}: {result.outcome} "
                f"{result.customer_id}"
            )
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        self.stdout.write(
            f"{len(accounts)} accounts: {summary or 'nothing done'}; {len(errors)} errors"
        )
        if errors:
            raise CommandError(f"{len(errors)} accounts not linked (listed above)")
