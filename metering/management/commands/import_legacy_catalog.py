"""`import_legacy_catalog`: the legacy plans as Stripe products, meters and prices."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.stripe_api import StripeApiError
from metering.catalog_import import catalog_import
from metering.locks import RunInProgress
from metering.selectors import cohort_get


class Command(BaseCommand):
    help = (
        "Create the Stripe catalog the legacy plans need: products Account Charges, Usage (Ad "
        "Serving) and Managed Services, one sum meter per usage type (ST, RM, CV), a flat "
        "monthly price per distinct sub_rate and a volume-tiered metered price per distinct "
        "tier ladder (shared through lookup_key). Idempotent: recorded objects are never "
        "created again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cohort", type=int, help="Only the plans of this cohort's accounts.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be created; call nothing."
        )

    def handle(self, *args, cohort=None, dry_run=False, **options):
        if cohort is not None and cohort_get(cohort) is None:
            raise CommandError(f"--cohort: no cohort {cohort}")
        try:
            report = catalog_import(
                cohort=cohort, dry_run=dry_run, progress=lambda m: self.stdout.write(f"  {m}")
            )
        except StripeApiError as exc:
            raise CommandError(f"Stripe refused: {exc.message}") from exc
        except RunInProgress as exc:
            raise CommandError(str(exc)) from exc
        for object_type, key, what in report.planned:
            self.stdout.write(f"would create {object_type} {key}: {what}")
        for object_type, key, stripe_id in report.created:
            self.stdout.write(f"created {object_type} {stripe_id} ({key})")
        for object_type, key, stripe_id in report.adopted:
            self.stdout.write(f"recorded existing {object_type} {stripe_id} ({key})")
        for error in report.errors:
            self.stderr.write(f"error: {error}")
        verb = "would create" if dry_run else "created"
        count = len(report.planned) if dry_run else len(report.created)
        self.stdout.write(
            f"{report.accounts} accounts; {verb} {count} Stripe objects, recorded "
            f"{len(report.adopted)} found in Stripe, {report.existing} already recorded; "
            f"{len(report.errors)} errors"
        )
        if report.errors:
            raise CommandError(f"{len(report.errors)} plans could not be imported (listed above)")
