"""Shared records every app writes: datapoints, alerts, the worker heartbeat, monitors and the
state of the dj-stripe mirror."""

from django.db import models


class BillingEvent(models.Model):
    """An append-only datapoint (the seed's Analytics Engine events), also logged as JSON."""

    name = models.CharField(max_length=64, db_index=True)
    dimensions = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["name", "-occurred_at"])]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class Alert(models.Model):
    """One alert to people, delivered to its route's channels by a task, at most once each."""

    class Route(models.TextChoices):
        OPERATIONS = "operations", "Operations (#alerts)"
        BILLING = "billing", "Billing (#billing-alerts + email)"

    route = models.CharField(max_length=16, choices=Route.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    dimensions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    slack_sent_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"[{self.route}] {self.title}"


class WorkerHeartbeat(models.Model):
    """The task worker's last sign of life, written by a scheduled task; read by /healthz."""

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class Monitor(models.Model):
    """The latest reading of one monitored condition; an alert goes out when it turns bad."""

    name = models.CharField(max_length=64, unique=True)
    ok = models.BooleanField(null=True, help_text="Empty until the first check.")
    summary = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the reading last turned good or bad."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StripeMirror(models.Model):
    """dj-stripe's copy of the objects one Stripe event touched: updated after our own handling
    of the event, retried on its own schedule, never holding up a delivery."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Mirrored"
        FAILED = "failed", "Failed (gave up)"

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=250)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.state})"
