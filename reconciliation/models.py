"""Reconciliation records: runs, per-account results, drift records and their history.

The legacy database models live in `legacy.py`. Money is integer minor units; a delta is
Stripe minus legacy. Runs, results and drift records are never deleted.
"""

from django.conf import settings
from django.db import models

from .legacy import (  # noqa: F401  (registered with this app so the router and admin see them)
    LegacyAccount,
    LegacyInvoice,
    LegacyInvoiceLine,
    LegacyManagedServiceJob,
    LegacyPlanSub,
    LegacyPlanUsage,
)


class ReconciliationRun(models.Model):
    """One attempt at reconciling one service month for one scope (all, or one cohort)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        CLEAN = "clean", "Clean"
        DRIFT = "drift", "Drift"
        PENDING = "pending", "Pending"
        ERROR = "error", "Error"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        COMMAND = "command", "Command (backfill)"
        DEMO = "demo", "Demo"

    run_date = models.DateField(help_text="The day this run is for (UTC).")
    service_month = models.DateField(help_text="First day of the service month compared.")
    scope_key = models.CharField(max_length=32, help_text='"all" or "cohort:<number>".')
    cohort_number = models.PositiveSmallIntegerField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    forced = models.BooleanField(default=False)
    requested_by = models.CharField(max_length=150, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    legacy_deadline = models.DateField(
        help_text="Before this day a side not there yet is pending; from it, drift."
    )
    accounts_checked = models.PositiveIntegerField(default=0)
    accounts_clean = models.PositiveIntegerField(default=0)
    accounts_drift = models.PositiveIntegerField(default=0)
    accounts_pending = models.PositiveIntegerField(default=0)
    members_in_scope = models.PositiveIntegerField(default=0)
    stripe_invoices_read = models.PositiveIntegerField(default=0)
    legacy_invoices_read = models.PositiveIntegerField(default=0)
    total_delta_minor = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    timings_ms = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-run_date", "-started_at", "-id"]
        constraints = [
            # The claim: one attempt number per day and scope, so two triggers for the same
            # day cannot both start attempt 1.
            models.UniqueConstraint(
                fields=["run_date", "scope_key", "attempt"], name="reconrun_one_attempt_per_day"
            ),
        ]
        indexes = [models.Index(fields=["service_month", "status"])]

    def __str__(self) -> str:
        return f"{self.run_date} · {self.scope_key} · attempt {self.attempt} · {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class ResultStatus(models.TextChoices):
    CLEAN = "clean", "Clean"
    DRIFT = "drift", "Drift"
    PENDING = "pending", "Pending"


class DriftReason(models.TextChoices):
    NONE = "", "—"
    AMOUNTS_DIFFER = "amounts_differ", "Amounts differ"
    MISSING_LEGACY = "missing_legacy", "No legacy invoice"
    MISSING_STRIPE = "missing_stripe", "No Stripe lines"
    MISSING_BOTH = "missing_both", "Nothing on either side"
    CURRENCY_DIFFERS = "currency_differs", "Currencies differ"
    STRIPE_ONLY = "stripe_only", "Billed by Stripe alone (migrated account)"


class ReconciliationResult(models.Model):
    """One account's service month in one run: both totals, the delta and the breakdown."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="results")
    account = models.ForeignKey(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="+"
    )
    acct_id = models.PositiveIntegerField(db_index=True)
    cohort_number = models.PositiveSmallIntegerField(null=True, blank=True)
    service_month = models.DateField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=ResultStatus.choices)
    reason = models.CharField(max_length=24, choices=DriftReason.choices, blank=True)
    stripe_total_minor = models.BigIntegerField()
    legacy_total_minor = models.BigIntegerField()
    delta_minor = models.BigIntegerField(help_text="Stripe minus legacy, minor units.")
    stripe_by_kind = models.JSONField(default=dict)
    legacy_by_kind = models.JSONField(default=dict)
    drift_kinds = models.JSONField(default=list, blank=True)
    stripe_invoice_ids = models.JSONField(default=list, blank=True)
    legacy_inv_uuids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["run_id", "acct_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "account"], name="reconresult_one_per_account")
        ]

    def __str__(self) -> str:
        return f"{self.acct_id} · {self.service_month:%Y-%m} · {self.status}"


class DriftRecord(models.Model):
    """A difference found for one account and service month, followed up by a person."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        INVESTIGATING = "investigating", "Investigating"
        RESOLVED = "resolved", "Resolved"
        EXPLAINED = "explained", "Explained"

    account = models.ForeignKey(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="drift_records"
    )
    acct_id = models.PositiveIntegerField(db_index=True)
    cohort_number = models.PositiveSmallIntegerField(null=True, blank=True)
    service_month = models.DateField()
    currency = models.CharField(max_length=3)
    stripe_total_minor = models.BigIntegerField()
    legacy_total_minor = models.BigIntegerField()
    delta_minor = models.BigIntegerField(help_text="Stripe minus legacy, minor units.")
    reason = models.CharField(max_length=24, choices=DriftReason.choices, blank=True)
    kinds = models.JSONField(default=list, help_text="Line kinds whose totals differ.")
    stripe_invoice_ids = models.JSONField(default=list, blank=True)
    legacy_inv_uuids = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    note = models.TextField(blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    first_run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="+")
    last_run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="+")
    first_detected_at = models.DateTimeField()
    last_detected_at = models.DateTimeField()
    detections = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-service_month", "acct_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "service_month"], name="driftrecord_one_per_account_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.acct_id} · {self.service_month:%Y-%m} · {self.delta_minor:+d}"


class DriftRecordEvent(models.Model):
    """The history of a drift record: detections, clean re-checks, status changes, notes."""

    class Action(models.TextChoices):
        DETECTED = "detected", "Detected"
        REDETECTED = "redetected", "Detected again"
        SEEN_CLEAN = "seen_clean", "Seen clean"
        STATUS_CHANGED = "status_changed", "Status changed"
        NOTED = "noted", "Note added"

    record = models.ForeignKey(DriftRecord, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField()
    action = models.CharField(max_length=16, choices=Action.choices)
    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    delta_minor = models.BigIntegerField(null=True, blank=True)
    note = models.TextField(blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.record_id} · {self.action} @ {self.at:%Y-%m-%d %H:%M}"
