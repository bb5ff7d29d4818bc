"""`export_invoice_history`: legacy invoices and lines to monthly gzip CSVs in storage."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import BillingError
from exports.cli import check_range, parse_month, selected_acct_ids
from exports.history import history_export, history_summary, history_verify


class Command(BaseCommand):
    help = (
        "Export legacy invoices and their lines to history/<year>/<year>-<month>.csv.gz with a "
        "manifest per year. Resumable and idempotent: months already exported and unchanged are "
        "skipped, missing or differing files are redone. --verify re-reads every file."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="first", help="First service month, YYYY-MM.")
        parser.add_argument("--to", dest="last", help="Last service month, YYYY-MM.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List the files that would be written."
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Re-read every file from storage; check it against its manifest and the "
            "database. Exits non-zero naming each file with a problem.",
        )
        parser.add_argument(
            "--account",
            type=int,
            action="append",
            help="Only this legacy account (repeatable): narrows --verify, or writes an "
            "extract under history/extracts/.",
        )
        parser.add_argument(
            "--cohort", type=int, help="Only the accounts of this cohort number (as --account)."
        )

    def handle(self, *args, **options) -> None:
        first = parse_month(options["first"], option="--from")
        last = parse_month(options["last"], option="--to")
        check_range(first, last, options="--from/--to")
        acct_ids, label = selected_acct_ids(options["account"], options["cohort"])
        emit = self.stdout.write
        try:
            if options["verify"]:
                if options["dry_run"]:
                    raise CommandError("--verify and --dry-run: --verify writes nothing already")
                outcome = history_verify(first=first, last=last, acct_ids=acct_ids, emit=emit)
            else:
                outcome = history_export(
                    first=first,
                    last=last,
                    acct_ids=acct_ids,
                    extract=label,
                    dry_run=options["dry_run"],
                    emit=emit,
                )
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        for key in outcome.planned:
            self.stdout.write(f"would write {key}")
        for problem in outcome.problems:
            self.stderr.write(f"PROBLEM {problem}")
        summary = outcome.run.summary if outcome.run else history_summary(outcome)
        if outcome.problems:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
