"""`producer_token_create`: a token for a usage producer, printed once."""

from django.core.management.base import BaseCommand, CommandError

from metering.usage_models import ProducerToken
from metering.usage_services import producer_token_create


class Command(BaseCommand):
    help = (
        "Create a producer token for POST /usage. The token is printed once; only its SHA-256 "
        "is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Which producer will use it.")

    def handle(self, *args, **options) -> None:
        name = options["name"].strip()
        if not name:
            raise CommandError("name: give the producer a name")
        limit = ProducerToken._meta.get_field("name").max_length
        if len(name) > limit or not name.isprintable():
            raise CommandError(f"name: at most {limit} printable characters (got {len(name)})")
        token, raw = producer_token_create(name=name)
        self.stderr.write(f"token {token.pk} for {token.name!r} (shown once):")
        self.stdout.write(raw)
