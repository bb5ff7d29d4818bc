"""`setup_groups`: create or update the "Billing operator" and "Billing auditor" groups."""

from django.core.management.base import BaseCommand

from cohorts.permissions import groups_plan, groups_setup


class Command(BaseCommand):
    help = (
        "Create or update the groups 'Billing operator' (sees everything; runs cohort checks, "
        "transitions, notes and sign-offs) and 'Billing auditor' (sees everything, changes "
        "nothing). Idempotent; members are kept."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what the groups would get; write nothing."
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        for name, permissions in groups_plan().items():
            self.stdout.write(f"{name}: {len(permissions)} permissions")
        if dry_run:
            self.stdout.write("Dry run: nothing written.")
            return
        for name, created in groups_setup().items():
            self.stdout.write(f"  {'created' if created else 'updated'} {name!r}")
        self.stdout.write(self.style.SUCCESS("Groups ready: add staff users to them in the admin."))
