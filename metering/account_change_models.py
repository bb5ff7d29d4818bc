"""Audited changes of an account's routing fields: where invoices are emailed and which Stripe
customer the account is. Each row says who asked, when, the value before and after, and why;
an email change waits for a second staff user's confirmation before it is applied."""

from django.conf import settings
from django.db import models

__all__ = ["AccountChange"]


class AccountChange(models.Model):
    class Field(models.TextChoices):
        BILLING_EMAIL = "billing_email", "Billing email"
        STRIPE_CUSTOMER_ID = "stripe_customer_id", "Stripe customer id"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a second person"
        APPLIED = "applied", "Applied"
        CANCELLED = "cancelled", "Cancelled"

    account = models.ForeignKey(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="routing_changes"
    )
    field = models.CharField(max_length=32, choices=Field.choices)
    before = models.CharField(max_length=255, blank=True)
    after = models.CharField(max_length=255, blank=True)
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "field"],
                condition=models.Q(status="pending"),
                name="accountchange_one_pending_per_field",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.field}: {self.before or '—'} → {self.after or '—'}"
