"""The end-of-scenario checks: what reached the outside world, counted at the stand-in servers,
against what the app recorded.

- Invoices: each invoice has exactly one message at the Mailgun-compatible server (matched by
  its `stripe_invoice_id` user variable), exactly one `sent` email attempt, and its delivery
  sent (or later: delivered).
- Usage: for every usage key posted, the meter events the Stripe-compatible server accepted
  under that key's identifiers add up to exactly the quantity posted, and every revision in our
  ledger for the key is `sent`.
- Tracking: every tracking event id is stored once and applied to its delivery once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Tally:
    expected: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # not there yet, may still arrive

    @property
    def complete(self) -> bool:
        return not self.pending and not self.lost

    def merge(self, other: Tally) -> Tally:
        return Tally(
            self.expected + other.expected,
            self.lost + other.lost,
            self.duplicated + other.duplicated,
            self.pending + other.pending,
        )


def invoices_tally(stack, invoice_ids: list[str]) -> Tally:
    from invoices.models import EmailAttempt, InvoiceDelivery

    tally = Tally(expected=len(invoice_ids))
    emails = Counter(m["invoice"] for m in stack.servers.call("messages"))
    sent_attempts = Counter(
        EmailAttempt.objects.filter(
            delivery__stripe_invoice_id__in=invoice_ids, status=EmailAttempt.Status.SENT
        ).values_list("delivery__stripe_invoice_id", flat=True)
    )
    states = dict(
        InvoiceDelivery.objects.filter(stripe_invoice_id__in=invoice_ids).values_list(
            "stripe_invoice_id", "state"
        )
    )
    for invoice in invoice_ids:
        if emails[invoice] > 1 or sent_attempts[invoice] > 1:
            tally.duplicated.append(invoice)
        if emails[invoice] == 0 or sent_attempts[invoice] == 0:
            if states.get(invoice) == "failed":
                tally.lost.append(invoice)
            else:
                tally.pending.append(invoice)
        elif states.get(invoice) not in ("sent", "delivered"):
            tally.pending.append(invoice)
    return tally


def usage_tally(stack, expected: dict[str, int]) -> Tally:
    """`expected`: usage key -> the quantity posted for it."""
    from metering.usage_models import UsageRevision

    tally = Tally(expected=len(expected))
    at_stripe: dict[str, int] = defaultdict(int)
    for event in stack.servers.call("meter_events"):
        key = event["identifier"].rsplit(":", 1)[0]
        if key in expected:
            at_stripe[key] += int(event["value"])
    states: dict[str, set[str]] = defaultdict(set)
    rows = UsageRevision.objects.filter(
        record__account__acct_id__in={int(key.split(":")[0]) for key in expected}
    ).values_list("identifier", "state")
    for identifier, state in rows:
        key = identifier.rsplit(":", 1)[0]
        if key in expected:
            states[key].add(state)
    for key, quantity in expected.items():
        if not states[key] or states[key] & {"failed", "too_late"}:
            tally.lost.append(key)  # never stored, or given up on
        elif states[key] != {"sent"}:
            tally.pending.append(key)  # a revision still in the outbox
        elif at_stripe[key] > quantity:
            tally.duplicated.append(key)
        elif at_stripe[key] < quantity:
            tally.lost.append(key)  # marked sent, yet Stripe's meter is short
    return tally


def tracking_tally(event_ids: list[str]) -> Tally:
    from invoices.models import DeliveryEvent, TrackingEvent

    tally = Tally(expected=len(event_ids))
    stored = Counter(
        TrackingEvent.objects.filter(event_id__in=event_ids).values_list("event_id", flat=True)
    )
    applied = Counter(
        DeliveryEvent.objects.filter(data__event_id__in=event_ids).values_list(
            "data__event_id", flat=True
        )
    )
    for event_id in event_ids:
        if stored[event_id] > 1 or applied[event_id] > 1:
            tally.duplicated.append(event_id)
        elif not stored[event_id] or not applied[event_id]:
            tally.pending.append(event_id)
    return tally
