"""The invoices app's boundary to Stripe: read an invoice and every one of its lines."""

from typing import Any

from billing_project import stripe_api


def stripe_invoice_fetch(invoice_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The invoice and all its lines, as plain dicts: one call when the invoice embeds all
    its lines, more only for a long invoice (Stripe embeds the first ones and says
    `has_more`; the rest come from the lines endpoint)."""
    invoice = stripe_api.request("get", f"/v1/invoices/{invoice_id}")
    return invoice, stripe_api.invoice_lines(invoice)
