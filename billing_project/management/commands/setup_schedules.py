"""Install the declared django-q2 schedules (idempotent; removes undeclared ones)."""

from django.core.management.base import BaseCommand

from billing_project.schedules import schedule_specs, schedules_install


class Command(BaseCommand):
    help = (
        "Make the stored task schedules equal the ones the apps declare: create or update each "
        "by name and remove schedules no app declares. Safe to run on every deploy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Show changes, write nothing.")

    def handle(self, *args, dry_run, **options):
        report = schedules_install(dry_run=dry_run)
        prefix = "Would " if dry_run else ""
        specs = {spec.name: spec for spec in schedule_specs()}
        for label, names in (
            ("create", report.created),
            ("update", report.updated),
            ("keep", report.unchanged),
            ("remove", report.removed),
        ):
            for name in names:
                spec = specs.get(name)
                when = ""
                if spec is not None:
                    when = f"cron '{spec.cron}' UTC" if spec.cron else f"every {spec.minutes} min"
                self.stdout.write(f"{prefix}{label}: {name} {when}".rstrip())
        self.stdout.write(
            self.style.SUCCESS(
                f"{prefix}{len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged, {len(report.removed)} removed"
            )
        )
