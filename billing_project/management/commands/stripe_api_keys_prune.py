"""Delete Stripe keys dj-stripe stored other than the configured one (run after a rotation)."""

from django.core.management.base import BaseCommand

from billing_project.stripe_keys import stripe_api_keys_prune


class Command(BaseCommand):
    help = (
        "dj-stripe stores the Stripe secret keys it used in its APIKey table. After rotating "
        "STRIPE_SECRET_KEY (and deploying), delete every stored key but the configured one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List, delete nothing.")

    def handle(self, *args, dry_run, **options):
        report = stripe_api_keys_prune(dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        for masked in report.removed:
            self.stdout.write(f"{verb} stored key {masked}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {len(report.removed)} stored key(s); {report.kept} configured key kept"
            )
        )
