"""Usage records posted by metering producers and their delivery to Stripe meters.

- `ProducerToken`: a credential for `POST /usage`; only its SHA-256 is stored.
- `UsageRecord`: the ledger, one row per key `{acct_id}:{period}:{type}` (unique), holding the
  current quantity and revision.
- `UsageRevision`: the outbox, one row per revision of a record. Revision 1 sends the whole
  quantity; a correction sends only the difference. Each row becomes one Stripe meter event
  whose `identifier` is the key plus the revision.
"""

from django.conf import settings
from django.db import models

from .usage_types import UsageType

__all__ = ["MeterErrorReport", "ProducerToken", "UsageRecord", "UsageRevision"]


class ProducerToken(models.Model):
    """A bearer token a usage producer sends to `POST /usage`. Shown once, stored hashed."""

    name = models.CharField(max_length=200, help_text="Which producer uses this token.")
    prefix = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters, to recognise it."
    )
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The rate limit's fixed window: when the current minute began and how many requests it
    # has seen (metering.usage_throttle).
    rate_window_start = models.DateTimeField(null=True, blank=True, editable=False)
    rate_window_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UsageRecord(models.Model):
    """The current quantity for one account, UTC day and usage type."""

    account = models.ForeignKey(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="usage_records"
    )
    period = models.DateField(help_text="The UTC day the usage accrued on.")
    usage_type = models.CharField(max_length=2, choices=UsageType.choices)
    quantity = models.BigIntegerField(help_text="Impressions, after the latest revision.")
    revision = models.PositiveIntegerField(default=1)
    producer = models.ForeignKey(
        ProducerToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ingest_id = models.UUIDField(
        db_index=False, editable=False, help_text="The request that created this record."
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-period", "account_id", "usage_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "period", "usage_type"], name="usage_record_key_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=0), name="usage_record_quantity_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(usage_type__in=UsageType.values),
                name="usage_record_usage_type_valid",
            ),
        ]
        indexes = [models.Index(fields=["period"], name="usage_record_period_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.period:%Y-%m-%d}:{self.usage_type}"


class UsageRevision(models.Model):
    """One meter event to send: the difference a revision made to its record."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (needs attention)"
        TOO_LATE = "too_late", "Too late for its invoice"

    record = models.ForeignKey(UsageRecord, on_delete=models.PROTECT, related_name="revisions")
    revision = models.PositiveIntegerField()
    quantity = models.BigIntegerField(help_text="The record's quantity after this revision.")
    delta = models.BigIntegerField(help_text="What this revision adds to the meter (signed).")
    identifier = models.CharField(
        max_length=100, unique=True, help_text="Stripe meter event identifier: key + revision."
    )
    event_timestamp = models.DateTimeField(
        help_text="The meter event's timestamp: inside the period's day, fixed at creation."
    )
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    too_late_reason = models.CharField(max_length=255, blank=True)
    stripe_error_code = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",  # the ledger inserts revisions in SQL
        help_text="Set when Stripe refused the meter event after accepting it (error report).",
    )
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When an operator settled this too-late usage."
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolution_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["record", "revision"], name="usage_revision_unique"),
            models.CheckConstraint(
                condition=~models.Q(delta=0), name="usage_revision_delta_not_zero"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state="pending"),
                name="usage_revision_due_idx",
            )
        ]

    def __str__(self) -> str:
        return self.identifier


class MeterErrorReport(models.Model):
    """A meter error report from Stripe (the `v1.billing.meter.error_report_triggered` thin
    event): meter events it accepted first and refused later, with its reasons."""

    class State(models.TextChoices):
        PENDING = "pending", "Received"
        APPLIED = "applied", "Applied to the outbox"
        FAILED = "failed", "Could not be read"

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    error_count = models.PositiveIntegerField(default=0, help_text="Errors Stripe counted.")
    revisions_refused = models.PositiveIntegerField(
        default=0, help_text="Our revisions named in Stripe's sample errors."
    )
    detail = models.JSONField(default=dict, blank=True, help_text="The event as Stripe holds it.")
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.state})"
