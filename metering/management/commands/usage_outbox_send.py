"""`usage_outbox_send`: send due usage revisions to Stripe meters now (as the schedule does)."""

from django.core.management.base import BaseCommand, CommandError

from metering.usage_models import UsageRevision
from metering.usage_outbox import OUTBOX_WORKERS, usage_outbox_send


class Command(BaseCommand):
    help = (
        "Send every due pending usage revision as a Stripe meter event (one call per customer "
        "and meter at a time; safe next to the scheduled run). Exits non-zero if rows failed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workers", type=int, default=OUTBOX_WORKERS)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what is due; send nothing."
        )

    def handle(self, *args, **options) -> None:
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        pending = UsageRevision.objects.filter(state=UsageRevision.State.PENDING)
        if options["dry_run"]:
            self.stdout.write(f"{pending.count()} pending revision(s); nothing sent (dry run)")
            return
        self.stderr.write(f"  … {pending.count()} pending revision(s)")
        report = usage_outbox_send(workers=options["workers"])
        self.stdout.write(report.summary())
        for identifier in report.too_late:
            self.stdout.write(f"  too late: {identifier}")
        if report.failed:
            raise CommandError(f"{len(report.failed)} revision(s) failed: {report.failed[:10]}")
