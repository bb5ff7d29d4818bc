"""`month_end_report`: the month-end workbook (or CSV) for one service month."""

from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import BillingError
from exports.cli import parse_month
from exports.output_paths import output_dir, report_output_path
from exports.reports import month_end_report_write


class Command(BaseCommand):
    help = (
        "Write the month-end report for a service month: per account ST/RM/CV impressions, "
        "tier and rate, subscription, managed-service jobs, legacy and Stripe totals and their "
        "difference, with a totals row. --format xlsx (default) or csv."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--month", required=True, help="Service month, YYYY-MM.")
        parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx", dest="fmt")
        parser.add_argument(
            "--output",
            help=(
                "File to write, inside REPORTS_OUTPUT_DIR (default: month-end-YYYY-MM.<format> "
                "there). Symbolic links are not followed; an existing file needs --force."
            ),
        )
        parser.add_argument(
            "--force", action="store_true", help="Overwrite the --output file if it exists."
        )
        parser.add_argument(
            "--without-stripe",
            action="store_true",
            help="Leave the Stripe total empty instead of reading Stripe.",
        )

    def handle(self, *args, **options) -> None:
        month = parse_month(options["month"], option="--month")
        name = options["output"] or f"month-end-{month:%Y-%m}.{options['fmt']}"
        try:
            output = report_output_path(name, force=options["force"])
        except BillingError as exc:
            raise CommandError(f"--output: {exc.message} (reports folder: {output_dir()})") from exc
        try:
            written = month_end_report_write(
                month=month,
                fmt=options["fmt"],
                include_stripe=not options["without_stripe"],
                output=output,
                overwrite=options["force"],
            )
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        except OSError as exc:
            raise CommandError(f"--output: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(written.run.summary))
