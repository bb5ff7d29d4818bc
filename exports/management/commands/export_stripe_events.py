"""`export_stripe_events`: archive Stripe events to events/<yyyy>/<mm>/<dd>.jsonl.gz."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import BillingError
from exports.cli import check_range, parse_day
from exports.events import stripe_events_export


class Command(BaseCommand):
    help = (
        "Archive the Stripe events we hold (dj-stripe) and those Stripe's events API still has "
        "(30 days) to events/<yyyy>/<mm>/<dd>.jsonl.gz with a manifest per month. Idempotent: "
        "days already complete are not rewritten. Runs daily from the schedule."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="first", help="First UTC day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="last", help="Last UTC day, YYYY-MM-DD (max yesterday).")
        parser.add_argument(
            "--no-api", action="store_true", help="Only the events held locally (no Stripe call)."
        )
        parser.add_argument("--dry-run", action="store_true", help="List the files to write.")

    def handle(self, *args, **options) -> None:
        first = parse_day(options["first"], option="--from")
        last = parse_day(options["last"], option="--to")
        check_range(first, last, options="--from/--to")
        try:
            outcome = stripe_events_export(
                first=first,
                last=last,
                use_api=not options["no_api"],
                dry_run=options["dry_run"],
                emit=self.stdout.write,
            )
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        for key in outcome.planned:
            self.stdout.write(f"would write {key}")
        self.stdout.write(self.style.SUCCESS(outcome.summary()))
