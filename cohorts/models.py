"""Migration cohorts and the history of which account was in which cohort when."""

from django.conf import settings
from django.db import models


class Cohort(models.Model):
    """A group of accounts moved to Stripe together, one billing cycle at a time."""

    class PricingModel(models.IntegerChoices):
        FLAT_ONLY = 1, "Flat subscription only"
        FLAT_TIERED = 2, "Flat subscription + tiered impressions"
        CUSTOM = 3, "Custom / managed-services heavy"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        READY = "ready", "Ready"
        PARALLEL_RUN = "parallel_run", "Parallel run"
        MIGRATED = "migrated", "Migrated"
        ROLLED_BACK = "rolled_back", "Rolled back"

    number = models.PositiveSmallIntegerField(unique=True)
    name = models.CharField(max_length=100)
    pricing_model = models.PositiveSmallIntegerField(choices=PricingModel.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PLANNED, db_index=True
    )
    cycle_start = models.DateField(
        null=True, blank=True, help_text="First day of the billing cycle under parallel run."
    )
    cycle_end = models.DateField(
        null=True, blank=True, help_text="Last day of the billing cycle under parallel run."
    )
    round = models.PositiveSmallIntegerField(
        default=1,
        help_text="Migration attempt; a cohort re-planned after a rollback starts a new round, "
        "and checks, reviews and sign-offs of earlier rounds no longer count.",
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        permissions = [
            ("operate_cohort", "Can run checks, record items, sign off and move cohorts"),
        ]

    def __str__(self) -> str:
        return f"Cohort {self.number} · {self.name}"


class CohortMembership(models.Model):
    """An account's stay in a cohort. An open membership has no `left_at`; at most one each."""

    cohort = models.ForeignKey(Cohort, on_delete=models.PROTECT, related_name="memberships")
    account = models.ForeignKey(
        "metering.BillingAccount", on_delete=models.PROTECT, related_name="cohort_memberships"
    )
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    moved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-joined_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(left_at__isnull=True),
                name="cohortmembership_one_open_per_account",
            ),
            models.CheckConstraint(
                condition=models.Q(left_at__isnull=True)
                | models.Q(left_at__gte=models.F("joined_at")),
                name="cohortmembership_left_after_joined",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.cohort}"


from .checklist_models import *  # noqa: E402, F403  (checklist results, sign-offs, audit)
