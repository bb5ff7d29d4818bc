"""Whose invoice is it? Only invoices we produced, for accounts we bill, are delivered by us.

Legacy invoices already live in Stripe as manual invoices and the legacy system emails them
itself. Ours are those of accounts whose billing owner is `parallel` or `stripe` that came from
our subscriptions (the invoice's `parent.subscription_details`) or from invoice items we created
(every Stripe object we create carries `metadata.acct_id`). The $0 invoice Stripe issues when
an anchored subscription starts is not delivered either: it bills nothing.
"""

from typing import Any

from metering.models import BillingAccount


def invoice_not_ours_reason(
    *, invoice: dict[str, Any], lines: list[dict[str, Any]], account: BillingAccount | None
) -> str:
    """Why this invoice is not ours to deliver, or "" when it is."""
    if account is None:
        return f"no billing account has Stripe customer {invoice.get('customer')}"
    if not account.is_ours_to_deliver:
        return f"account {account.acct_id} is billed by the legacy service"
    if invoice.get("billing_reason") == "subscription_create" and not invoice.get("total"):
        # An anchored subscription starts with a $0 invoice; there is nothing to bill or send.
        return "zero-amount invoice opening a subscription: nothing to deliver"
    parent = invoice.get("parent") or {}
    if (parent.get("subscription_details") or {}).get("subscription"):
        return ""
    if any((line.get("metadata") or {}).get("acct_id") for line in lines):
        return ""
    return "legacy manual invoice (no subscription of ours, no invoice item of ours)"
