"""The checklists: the seed's ten pre-cohort items plus the two the architecture requires, and
the post-cycle items. Automated items name their check; manual items need a note."""

from collections.abc import Callable
from dataclasses import dataclass

from . import checks
from .checklist_models import ChecklistResult

PRE = ChecklistResult.Phase.PRE
POST = ChecklistResult.Phase.POST


@dataclass(frozen=True)
class Item:
    key: str
    phase: str
    label: str
    check: Callable[[checks.CheckContext], checks.Outcome] | None = None

    @property
    def automated(self) -> bool:
        return self.check is not None

    @property
    def method(self) -> str:
        return ChecklistResult.Method.AUTOMATED if self.automated else ChecklistResult.Method.MANUAL


ITEMS = (
    Item("subscriptions", PRE, "Stripe subscription for each member", checks.check_subscriptions),
    Item("flat_price", PRE, "Flat price = legacy sub_rate", checks.check_flat_price),
    Item("metered_prices", PRE, "Metered prices = legacy tiers", checks.check_metered_prices),
    Item("usage_signal", PRE, "Usage reaches Stripe for each member", checks.check_usage_signal),
    Item("webhook_trial", PRE, "Test-mode invoice.finalized processed", checks.check_webhook_trial),
    Item("pdf_rendered", PRE, "PDF rendered for representative members", checks.check_pdf_rendered),
    Item("mailgun_send", PRE, "Mailgun send: PDF, BCC, sender", checks.check_mailgun_send),
    Item("quickbooks_acodei", PRE, "Acodei creates QuickBooks entries (manual)"),
    Item("history_export", PRE, "History export covers every member", checks.check_history_export),
    Item("rollback_plan", PRE, "Rollback plan confirmed (manual)"),
    Item("dunning", PRE, "Smart Retries / dunning configured in Stripe (manual)"),
    Item("stripe_emails_off", PRE, "Stripe's own invoice emails off (manual)"),
    Item(
        "zero_drift", POST, "Reconciliation: zero drift for the full cycle", checks.check_zero_drift
    ),
    Item("invoices_delivered", POST, "All invoices delivered", checks.check_invoices_delivered),
    Item("no_rollback_requests", POST, "No rollback requests", checks.check_no_rollback_requests),
    Item("payment_once", POST, "Payment collected once", checks.check_payment_once),
    Item("quickbooks_match", POST, "QuickBooks matches Stripe (manual)"),
)
BY_KEY = {item.key: item for item in ITEMS}


def items(phase: str) -> list[Item]:
    return [item for item in ITEMS if item.phase == phase]


def item_get(key: str) -> Item:
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"no checklist item {key!r}; items: {', '.join(BY_KEY)}") from None
