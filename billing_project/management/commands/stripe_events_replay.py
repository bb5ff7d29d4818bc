"""Process the Stripe events (last 30 days) that never reached us, e.g. after Stripe disabled
the webhook endpoint."""

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing_project.webhook_replay import stripe_events_replay

STRIPE_EVENTS_DAYS = 30


class Command(BaseCommand):
    help = (
        "List our endpoint's event types from Stripe's events API since --since (Stripe keeps "
        "30 days) and queue every event not processed yet, exactly like a webhook delivery. "
        "Safe to repeat."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", required=True, help="UTC date YYYY-MM-DD (at most 30 days ago)."
        )
        parser.add_argument("--dry-run", action="store_true", help="List, queue nothing.")

    def handle(self, *args, since, dry_run, **options):
        try:
            start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise CommandError(f"--since must be a date YYYY-MM-DD, not {since!r}") from exc
        oldest = timezone.now() - timedelta(days=STRIPE_EVENTS_DAYS)
        if start < oldest.replace(hour=0, minute=0, second=0, microsecond=0):
            raise CommandError(
                f"--since {since} is more than {STRIPE_EVENTS_DAYS} days ago: Stripe's events "
                "API no longer has those events"
            )
        try:
            report = stripe_events_replay(
                since=start, dry_run=dry_run, progress=lambda line: self.stdout.write(line)
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "would queue" if dry_run else "queued"
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.seen} events since {since}: {len(report.replayed)} {verb}, "
                f"{report.already_held} already held"
            )
        )
