"""`billing_demo`: load a realistic demo data set (idempotent)."""

import os
import secrets
import time
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from billing_project.demo import DemoContext, demo_steps

ADMIN_USERNAME = "admin"
ADMIN_URL = "http://127.0.0.1:8000/admin/"


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise ArgumentTypeError(f"not an integer: {text!r}") from exc
        if not low <= value <= high:
            raise ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value

    return parse


class Command(BaseCommand):
    help = (
        "Load a realistic demo data set (idempotent): cohorts, a legacy billing database with "
        "accounts, plans and monthly invoices, and the billing accounts linked to it. Refuses "
        "to run with DEBUG off unless --force."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--accounts", type=_bounded_int(1, 5000), default=30, help="Legacy accounts (30)."
        )
        parser.add_argument(
            "--months",
            type=_bounded_int(1, 240),
            default=14,
            help="Months of legacy invoices, ending with the last full month (14).",
        )
        parser.add_argument(
            "--seed", type=int, default=DemoContext.seed, help="Random seed (same seed, same data)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List the steps that would run; write nothing."
        )
        parser.add_argument(
            "--admin-password",
            default=None,
            help="Password for the superuser 'admin' (default: $DEMO_ADMIN_PASSWORD; otherwise "
            "a random one, only when 'admin' does not exist yet).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Run even though DEBUG is off (never production)."
        )
        parser.add_argument(
            "--skip",
            action="append",
            default=[],
            metavar="STEP",
            help="Leave out a step by name (repeatable), e.g. --skip 'invoice delivery'.",
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "refusing to load demo data: DEBUG is off, so this may be a production database. "
                "Pass --force to load it anyway."
            )
        steps = demo_steps()
        unknown = set(options["skip"]) - {step.name for step in steps}
        if unknown:
            names = ", ".join(repr(step.name) for step in steps)
            raise CommandError(
                f"--skip: no step named {', '.join(sorted(unknown))}; steps: {names}"
            )
        steps = [step for step in steps if step.name not in options["skip"]]
        if options["dry_run"]:
            self.stdout.write(f"Dry run: {len(steps)} steps would run (nothing written):")
            for number, step in enumerate(steps, start=1):
                self.stdout.write(f"  [{number}/{len(steps)}] {step.name} (order {step.order})")
            exists = self._guard(self._admin_exists)
            self.stdout.write(
                f"  then {'keep' if exists else 'create'} the superuser {ADMIN_USERNAME!r}"
            )
            return

        ctx = DemoContext(
            seed=options["seed"], accounts=options["accounts"], months=options["months"]
        )
        self.stdout.write(
            f"Loading demo data: {ctx.accounts} accounts x {ctx.months} months, seed {ctx.seed}"
        )
        started = time.monotonic()
        for number, step in enumerate(steps, start=1):
            step_started = time.monotonic()
            try:
                summary = step.run(ctx)
            except Exception as exc:
                raise CommandError(f"demo step {step.name!r} failed: {exc}") from exc
            elapsed = time.monotonic() - step_started
            self.stdout.write(f"[{number}/{len(steps)}] {step.name}: {summary} ({elapsed:.2f}s)")
        password = options["admin_password"] or os.environ.get("DEMO_ADMIN_PASSWORD") or None
        self._guard(lambda: self._ensure_admin(password))
        self.stdout.write(
            self.style.SUCCESS(f"Demo data loaded in {time.monotonic() - started:.2f}s.")
        )

    def _guard(self, action: Callable[[], object]) -> object:
        try:
            return action()
        except DatabaseError as exc:
            raise CommandError(f"database error (is it migrated?): {exc}") from exc

    def _admin_exists(self) -> bool:
        return get_user_model().objects.filter(username=ADMIN_USERNAME).exists()

    def _ensure_admin(self, password: str | None) -> None:
        """Create the superuser `admin` or keep it; its password changes only when one is given."""
        user_model = get_user_model()
        user = user_model.objects.filter(username=ADMIN_USERNAME).first()
        generated = password is None and user is None
        if generated:
            password = secrets.token_urlsafe(12)
        if user is None:
            user_model.objects.create_superuser(username=ADMIN_USERNAME, password=password)
        elif password is not None or not (user.is_staff and user.is_superuser and user.is_active):
            if password is not None:
                user.set_password(password)
            user.is_staff = user.is_superuser = user.is_active = True
            user.save()
        self.stdout.write(f"Admin: {ADMIN_URL}")
        if generated:
            self.stdout.write(f"  login: {ADMIN_USERNAME} / {password}")
        elif password is not None:
            self.stdout.write(f"  login: {ADMIN_USERNAME} / the password given")
        else:
            self.stdout.write(f"  login: {ADMIN_USERNAME} (existing password unchanged)")
