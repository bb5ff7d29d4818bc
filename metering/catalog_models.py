"""What we created in Stripe, kept as our own durable record (Stripe's idempotency keys last
about 24 hours): catalog objects, provisioned subscriptions and managed-service jobs."""

from django.conf import settings
from django.db import models

__all__ = ["CatalogObject", "ManagedJob", "SubscriptionRecord"]


class CatalogObject(models.Model):
    """A Stripe product, meter or price made from the legacy plans, under our own key."""

    class ObjectType(models.TextChoices):
        PRODUCT = "product", "Product"
        METER = "meter", "Billing meter"
        PRICE = "price", "Price"

    key = models.CharField(
        max_length=200, unique=True, help_text="Our name for the object; a price's lookup_key."
    )
    object_type = models.CharField(max_length=16, choices=ObjectType.choices, db_index=True)
    stripe_id = models.CharField(max_length=255, unique=True, verbose_name="Stripe id")
    kind = models.CharField(max_length=16, blank=True, help_text="metadata.kind")
    details = models.JSONField(default=dict, blank=True, help_text="What the object prices.")
    adopted = models.BooleanField(
        default=False, help_text="Found already in Stripe (by name, event name or lookup key)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["object_type", "key"]

    def __str__(self) -> str:
        return f"{self.get_object_type_display()} {self.key} ({self.stripe_id})"


class SubscriptionRecord(models.Model):
    """The Stripe subscription provisioned for an account: flat + metered items."""

    account = models.OneToOneField(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="subscription_record"
    )
    cohort = models.ForeignKey(
        "cohorts.Cohort", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    stripe_subscription_id = models.CharField(
        max_length=255, unique=True, verbose_name="Stripe subscription id"
    )
    billing_cycle_anchor = models.DateTimeField()
    collection_method = models.CharField(max_length=32)
    items = models.JSONField(
        default=list, help_text="[{price, lookup_key, kind, quantity, item}] as created."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.account_id} · {self.stripe_subscription_id}"


class ManagedJob(models.Model):
    """A managed-service job billed as a Stripe invoice item on the account's next invoice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent to Stripe"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="managed_jobs"
    )
    legacy_job_id = models.IntegerField(
        null=True, blank=True, unique=True, help_text="managed_service_job.job_id, if imported."
    )
    description = models.CharField(max_length=200)
    service_month = models.DateField(help_text="First day of the month the job was done in.")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    stripe_invoice_item_id = models.CharField(
        max_length=255, null=True, blank=True, unique=True, verbose_name="Stripe invoice item id"
    )
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-service_month", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="managed_job_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(service_month__day=1), name="managed_job_month_first_day"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="sent") | models.Q(stripe_invoice_item_id__isnull=False),
                name="managed_job_sent_has_stripe_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} · {self.description} · {self.service_month:%Y-%m}"
