"""Billing accounts (the link between a legacy account, its Stripe customer and its cohort),
the Stripe catalog objects we created, the subscriptions we provisioned and managed jobs."""

from django.db import models


class BillingAccount(models.Model):
    """One customer account. `acct_id` is the legacy id; the Stripe customer id links Stripe
    objects back to it (it comes from the legacy `payment_customer_id`)."""

    class BillingOwner(models.TextChoices):
        LEGACY = "legacy", "Legacy"
        PARALLEL = "parallel", "Parallel run"
        STRIPE = "stripe", "Stripe"

    acct_id = models.PositiveIntegerField(unique=True, verbose_name="legacy account id")
    name = models.CharField(max_length=200)
    billing_email = models.EmailField(blank=True)
    address = models.TextField(blank=True, help_text="Billing address as printed on invoices.")
    stripe_customer_id = models.CharField(
        max_length=255, unique=True, null=True, blank=True, verbose_name="Stripe customer id"
    )
    billing_owner = models.CharField(
        max_length=16,
        choices=BillingOwner.choices,
        default=BillingOwner.LEGACY,
        db_index=True,
        help_text=(
            "Who bills this account: the legacy service; both (parallel run: legacy bills, "
            "Stripe shadows and is reconciled); or Stripe alone."
        ),
    )
    cohort = models.ForeignKey(
        "cohorts.Cohort",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="accounts",
        help_text="Current cohort; the membership history is kept in cohort memberships.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["acct_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stripe_customer_id__isnull=True)
                | models.Q(stripe_customer_id__startswith="cus_"),
                name="billingaccount_stripe_customer_id_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.acct_id} · {self.name}"

    @property
    def is_ours_to_deliver(self) -> bool:
        """Invoices are ours to deliver only for parallel-run and Stripe-owned accounts."""
        return self.billing_owner in (self.BillingOwner.PARALLEL, self.BillingOwner.STRIPE)


from .account_change_models import *  # noqa: E402, F403  (audited routing changes)
from .catalog_models import *  # noqa: E402, F403  (catalog, subscriptions, managed jobs)
from .usage_models import *  # noqa: E402, F403  (usage records live in their own module)
