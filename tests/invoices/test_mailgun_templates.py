"""`mailgun_templates_check`: Mailgun's stored invoice templates exist and read our variables."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from invoices.emails import invoice_email_variable_names, invoice_email_variables
from invoices.mailgun_templates import template_variables
from tests.invoices.pdf_cases import cases


def _check() -> str:
    out = StringIO()
    call_command("mailgun_templates_check", stdout=out)
    return out.getvalue()


def test_the_stored_templates_exist_and_use_only_what_we_send(mailgun):
    out = _check()

    assert "invoice_new: ok (active version 2026-12;" in out
    assert "invoice_notify: ok (active version 2026-12;" in out
    assert "hosted_invoice_url" in out.splitlines()[0]


def test_a_missing_template_fails_the_check(mailgun):
    mailgun.remove_template("invoice_notify")

    with pytest.raises(CommandError, match="invoice_notify: no such stored template"):
        _check()


def test_a_template_reading_a_variable_we_never_send_fails_the_check(mailgun):
    mailgun.put_template(
        "invoice_new",
        "<p>{{number}}: {{amount_due}} by {{due_on}} <a href='{{hosted_invoice_url}}'>Pay</a></p>",
    )

    with pytest.raises(CommandError, match="invoice_new: uses variables we never send: due_on"):
        _check()


def test_a_template_without_the_pay_link_fails_the_check(mailgun):
    mailgun.put_template("invoice_new", "<p>{{#if number}}{{number}}{{/if}} {{{amount_due}}}</p>")

    with pytest.raises(CommandError, match="invoice_new: does not show hosted_invoice_url"):
        _check()


def test_mailgun_refusing_the_key_is_a_clear_error(mailgun, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_KEY": "key-wrong"}

    with pytest.raises(CommandError, match=r"Mailgun could not be read: .*HTTP 401"):
        _check()


def test_with_a_local_backend_there_is_nothing_to_check(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    with pytest.raises(CommandError, match="not Mailgun"):
        _check()


def test_the_variable_names_are_the_ones_each_email_carries():
    assert set(invoice_email_variables(cases()["tax"])) == invoice_email_variable_names()


def test_handlebars_variables_are_read_from_every_form():
    content = (
        '{{#if period}}for {{period}}{{/if}}{{else}}{{{customer_name}}}{{#equal status "paid"}}'
    )

    assert template_variables(content) == {"period", "customer_name", "status"}
