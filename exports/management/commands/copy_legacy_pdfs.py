"""`copy_legacy_pdfs`: legacy invoice PDFs from the old storage into R2."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import BillingError
from exports.cli import check_range, parse_month, selected_acct_ids
from exports.pdfs import legacy_pdfs_copy


class Command(BaseCommand):
    help = (
        "Copy every legacy invoice PDF from the old storage (LEGACY_PDF_SOURCE: s3://bucket/"
        "prefix or an https base URL) into R2 at {acct_id}/{inv_uuid}.pdf. Checksummed, "
        "resumable, never overwrites; PDFs missing at the source are listed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="first", help="First service month, YYYY-MM.")
        parser.add_argument("--to", dest="last", help="Last service month, YYYY-MM.")
        parser.add_argument("--account", type=int, action="append", help="Only this account.")
        parser.add_argument("--cohort", type=int, help="Only the accounts of this cohort.")
        parser.add_argument("--dry-run", action="store_true", help="List what would be copied.")

    def handle(self, *args, **options) -> None:
        first = parse_month(options["first"], option="--from")
        last = parse_month(options["last"], option="--to")
        check_range(first, last, options="--from/--to")
        acct_ids, _label = selected_acct_ids(options["account"], options["cohort"])
        try:
            outcome = legacy_pdfs_copy(
                first=first,
                last=last,
                acct_ids=acct_ids,
                dry_run=options["dry_run"],
                emit=self.stdout.write,
            )
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        for key in outcome.planned:
            self.stdout.write(f"would copy {key}")
        for where in outcome.missing:
            self.stdout.write(self.style.WARNING(f"MISSING at source: {where}"))
        for problem in outcome.problems:
            self.stderr.write(f"ERROR {problem}")
        if outcome.problems:
            raise CommandError(outcome.summary())
        style = self.style.WARNING if outcome.missing else self.style.SUCCESS
        self.stdout.write(style(outcome.summary()))
