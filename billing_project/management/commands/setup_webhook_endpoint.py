"""Record (and optionally register in Stripe) the dj-stripe webhook endpoint. A release step."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing_project.stripe_api import StripeApiError
from billing_project.stripe_webhook import webhook_endpoint_record, webhook_endpoint_register


class Command(BaseCommand):
    help = (
        "Create or update the local webhook endpoint record from the environment "
        "(UUID, STRIPE_WEBHOOK_SECRET, pinned API version) and print the URL to give Stripe. "
        "With --register, create the endpoint in Stripe and record the secret it returns."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=os.environ.get("BILLING_BASE_URL", "http://127.0.0.1:8000"),
            help="Public base URL of this app (default: $BILLING_BASE_URL or local).",
        )
        parser.add_argument(
            "--stripe-id", help="Stripe id (we_…) of an endpoint created elsewhere."
        )
        parser.add_argument(
            "--register", action="store_true", help="Create the endpoint in Stripe (network)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Show, change nothing.")

    def handle(self, *args, base_url, stripe_id, register, dry_run, **options):
        if not base_url.startswith(("http://", "https://")):
            raise CommandError(f"--base-url must start with http:// or https:// (got {base_url!r})")
        if not settings.STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
            raise CommandError("STRIPE_WEBHOOK_SECRET must be a Stripe signing secret (whsec_…)")
        secret = None
        if register:
            if dry_run:
                raise CommandError("--register cannot be combined with --dry-run")
            try:
                stripe_id, secret = webhook_endpoint_register(base_url=base_url)
            except StripeApiError as exc:
                raise CommandError(f"Stripe refused to create the endpoint: {exc}") from exc
        record = webhook_endpoint_record(
            base_url=base_url, stripe_id=stripe_id, secret=secret, dry_run=dry_run
        )
        verb = (
            "Would create" if dry_run and record.created else "Created" if record.created else None
        )
        if verb is None:
            verb = "Would update" if dry_run else "Updated"
            if not record.changed_fields:
                verb = "Unchanged"
        details = f" ({', '.join(record.changed_fields)})" if record.changed_fields else ""
        self.stdout.write(f"{verb} webhook endpoint {record.endpoint.id}{details}")
        self.stdout.write(f"URL: {record.endpoint.url}")
        self.stdout.write(f"API version: {record.endpoint.api_version}")
        if secret:
            self.stdout.write(
                self.style.WARNING(
                    f"Signing secret from Stripe: {secret}\n"
                    "Set it as STRIPE_WEBHOOK_SECRET now; it is shown only once."
                )
            )
