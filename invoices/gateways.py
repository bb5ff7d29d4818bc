"""The invoices app's one boundary to Stripe: read an invoice and every one of its lines."""

from typing import Any

import stripe
from django.conf import settings


def stripe_invoice_fetch(
    invoice_id: str, *, page_size: int = 100
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The invoice and all its lines (paged through the lines endpoint), as plain dicts.

    The invoice object embeds only its first lines; the lines endpoint is the complete list.
    """
    invoice = stripe.Invoice.retrieve(invoice_id, api_key=settings.STRIPE_SECRET_KEY)
    lines = [
        line.to_dict()
        for line in stripe.Invoice.list_lines(
            invoice_id, limit=page_size, api_key=settings.STRIPE_SECRET_KEY
        ).auto_paging_iter()
    ]
    return invoice.to_dict(), lines
