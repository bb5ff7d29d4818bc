"""`mailgun_templates_check`: the stored invoice templates exist and use the variables we send."""

from django.core.management.base import BaseCommand, CommandError

from invoices.mailgun import MailgunUnavailable, mailgun_backend_in_use
from invoices.mailgun_templates import invoice_templates_check


class Command(BaseCommand):
    help = (
        "Confirm that Mailgun's stored templates for invoice emails (invoice_new, "
        "invoice_notify, as BILLING_EMAIL_TEMPLATES names them) exist on the sending domain, "
        "have an active version, show what they must and read only variables the app sends. "
        "Exits non-zero on any problem."
    )

    def handle(self, *args, **options) -> None:
        if not mailgun_backend_in_use():
            raise CommandError("the email backend is not Mailgun: there are no stored templates")
        try:
            checks = invoice_templates_check()
        except MailgunUnavailable as exc:
            raise CommandError(f"Mailgun could not be read: {exc}") from exc
        problems = []
        for check in checks:
            if check.ok:
                self.stdout.write(
                    f"{check.name}: ok (active version {check.tag or '?'}; "
                    f"uses {', '.join(sorted(check.used))})"
                )
            problems.extend(check.problems)
        if problems:
            raise CommandError("; ".join(problems))
