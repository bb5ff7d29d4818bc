"""What was checked, reviewed, signed and decided for a cohort, and the audit trail of it all.

Every row here is append-only: a re-run of a check is a new result (the latest one counts), a
rollback is a new record, and the audit trail is protected by a database trigger.
"""

from django.conf import settings
from django.db import models

__all__ = ["AccountReview", "AuditEntry", "ChecklistResult", "CohortNote", "Rollback", "SignOff"]


class ChecklistResult(models.Model):
    """One run of one checklist item for a cohort: pass or fail, by whom, when, on what evidence.

    Automated items store the concrete ids they looked at in `evidence`; manual items carry
    the operator's note. The latest result of an item in the cohort's current round counts."""

    class Phase(models.TextChoices):
        PRE = "pre", "Pre-cohort"
        POST = "post", "Post-cycle"

    class Method(models.TextChoices):
        AUTOMATED = "automated", "Verified by code"
        MANUAL = "manual", "Confirmed by a person"

    cohort = models.ForeignKey("cohorts.Cohort", on_delete=models.PROTECT, related_name="results")
    round = models.PositiveSmallIntegerField()
    phase = models.CharField(max_length=8, choices=Phase.choices)
    item = models.CharField(max_length=40, db_index=True)
    method = models.CharField(max_length=16, choices=Method.choices)
    passed = models.BooleanField()
    summary = models.TextField(help_text="What was found, in one or a few lines.")
    evidence = models.JSONField(default=dict, blank=True, help_text="Ids looked at, per kind.")
    note = models.TextField(blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["cohort", "round", "item", "-at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(method="manual") | ~models.Q(note=""),
                name="checklistresult_manual_has_note",
            )
        ]

    def __str__(self) -> str:
        return f"{self.cohort_id} · {self.item} · {'pass' if self.passed else 'fail'}"


class AccountReview(models.Model):
    """Cohort 3: a person reviewed one account's custom arrangement and signed it."""

    cohort = models.ForeignKey("cohorts.Cohort", on_delete=models.PROTECT, related_name="reviews")
    round = models.PositiveSmallIntegerField()
    account = models.ForeignKey(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["account__acct_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cohort", "round", "account"], name="accountreview_one_per_round"
            ),
            models.CheckConstraint(condition=~models.Q(note=""), name="accountreview_has_note"),
        ]

    def __str__(self) -> str:
        return f"review {self.account_id} in {self.cohort_id}"


class SignOff(models.Model):
    """A staff user's sign-off that the cohort may be declared migrated (one per user)."""

    cohort = models.ForeignKey("cohorts.Cohort", on_delete=models.PROTECT, related_name="signoffs")
    round = models.PositiveSmallIntegerField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cohort", "round", "by"], name="signoff_one_per_user_and_round"
            )
        ]

    def __str__(self) -> str:
        return f"sign-off {self.by_id} on {self.cohort_id}"


class CohortNote(models.Model):
    """A note on a cohort; a rollback request is a note an operator raises during the cycle."""

    class Kind(models.TextChoices):
        NOTE = "note", "Note"
        ROLLBACK_REQUEST = "rollback_request", "Rollback request"

    cohort = models.ForeignKey("cohorts.Cohort", on_delete=models.PROTECT, related_name="notes")
    round = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NOTE)
    text = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(text=""), name="cohortnote_has_text")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.cohort_id}"


class Rollback(models.Model):
    """A cohort moved back to legacy billing: why, and what was done to each subscription."""

    class Action(models.TextChoices):
        PAUSE = "pause", "Pause collection (invoices voided)"
        CANCEL = "cancel", "Cancel"

    cohort = models.ForeignKey("cohorts.Cohort", on_delete=models.PROTECT, related_name="rollbacks")
    round = models.PositiveSmallIntegerField()
    from_status = models.CharField(max_length=16)
    action = models.CharField(max_length=8, choices=Action.choices)
    reason = models.TextField()
    subscriptions = models.JSONField(
        default=list, help_text="[{acct_id, subscription, result}] per member subscription."
    )
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty while a subscription still has to be stopped."
    )

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["cohort", "round"], name="rollback_one_per_round"),
            models.CheckConstraint(condition=~models.Q(reason=""), name="rollback_has_reason"),
        ]

    def __str__(self) -> str:
        return f"rollback of {self.cohort_id} (round {self.round})"


class AuditEntry(models.Model):
    """Append-only: one row per transition, check run, note, review, sign-off and owner change.

    A database trigger refuses UPDATE and DELETE on this table (PostgreSQL)."""

    class Action(models.TextChoices):
        TRANSITION = "transition", "Transition"
        TRANSITION_REFUSED = "transition_refused", "Transition refused"
        CHECK_RUN = "check_run", "Check run"
        MANUAL_ITEM = "manual_item", "Manual item recorded"
        NOTE = "note", "Note"
        REVIEW = "review", "Account review signed"
        SIGN_OFF = "sign_off", "Sign-off"
        OWNER_CHANGE = "owner_change", "Billing owner changed"
        ROLLBACK = "rollback", "Rollback"

    cohort = models.ForeignKey("cohorts.Cohort", on_delete=models.PROTECT, related_name="audit")
    action = models.CharField(max_length=24, choices=Action.choices, db_index=True)
    subject = models.CharField(max_length=100, blank=True, help_text="Item, account or target.")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    # PROTECT, not SET_NULL: the trigger refuses the UPDATE a SET_NULL would need.
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    by_name = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.subject}"
