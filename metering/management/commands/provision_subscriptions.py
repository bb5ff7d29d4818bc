"""`provision_subscriptions`: a Stripe subscription per account of a cohort."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from metering.locks import RunInProgress
from metering.provisioning import ProvisionError, subscriptions_provision


def _month(text: str) -> datetime:
    try:
        parsed = datetime.strptime(text, "%Y-%m")
    except ValueError as exc:
        raise CommandError(f"--anchor: expected YYYY-MM, not {text!r}") from exc
    return parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Create one subscription per account of a cohort (flat + metered items), anchored on "
        "the 1st of the month 00:00 UTC the cohort enters parallel run, proration_behavior="
        "none, the legacy collection method. Idempotent; ids are recorded. Stripe's own "
        "invoice emails must stay off (a Dashboard setting): this application sends invoices."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cohort", type=int, required=True)
        parser.add_argument(
            "--anchor", help="YYYY-MM: anchor month (default: the cohort's parallel-run month)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Plan only; create nothing.")

    def handle(self, *args, cohort, anchor=None, dry_run=False, **options):
        try:
            report = subscriptions_provision(
                cohort=cohort,
                anchor=_month(anchor) if anchor else None,
                dry_run=dry_run,
                progress=lambda m: self.stdout.write(f"  {m}"),
            )
        except (ProvisionError, RunInProgress) as exc:
            raise CommandError(str(exc)) from exc
        for acct_id, what in report.planned:
            self.stdout.write(f"would subscribe account {acct_id}: {what}")
        for acct_id, sub_id in report.created:
            self.stdout.write(f"created {sub_id} for account {acct_id}")
        for acct_id, sub_id in report.adopted:
            self.stdout.write(f"recorded existing {sub_id} for account {acct_id}")
        for error in report.errors:
            self.stderr.write(f"error: {error}")
        self.stdout.write(
            f"cohort {cohort}, anchor {report.anchor:%Y-%m-%d %H:%M} UTC: "
            f"{len(report.planned if dry_run else report.created)} "
            f"{'planned' if dry_run else 'created'}, {len(report.adopted)} recorded from Stripe, "
            f"{len(report.skipped)} already provisioned, {len(report.errors)} errors"
        )
        if report.errors:
            raise CommandError(f"{len(report.errors)} accounts not provisioned (listed above)")
