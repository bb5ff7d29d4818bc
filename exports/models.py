"""Export runs and what they produced: history months, copied legacy PDFs, archive files."""

from django.db import models


class ExportRun(models.Model):
    """One run of an export command: what, which range, how it ended."""

    class Kind(models.TextChoices):
        HISTORY = "history", "Invoice history"
        HISTORY_VERIFY = "history_verify", "Invoice history verification"
        HISTORY_EXTRACT = "history_extract", "Invoice history extract"
        PDFS = "pdfs", "Legacy PDFs"
        EVENTS = "events", "Stripe events"
        REPORT = "report", "Month-end report"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PROBLEMS = "problems", "Finished with problems"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    range_from = models.CharField(max_length=10, blank=True, help_text="YYYY-MM or YYYY-MM-DD.")
    range_to = models.CharField(max_length=10, blank=True, help_text="YYYY-MM or YYYY-MM-DD.")
    options = models.JSONField(default=dict, blank=True)
    files_written = models.PositiveIntegerField(default=0)
    files_unchanged = models.PositiveIntegerField(default=0)
    rows = models.BigIntegerField(default=0)
    bytes_written = models.BigIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True)
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(status="running"),
                name="exportrun_one_running_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.range_from}..{self.range_to} ({self.status})"


class ExportFile(models.Model):
    """A file a run wrote or found already up to date in storage."""

    class Action(models.TextChoices):
        WRITTEN = "written", "Written"
        UNCHANGED = "unchanged", "Unchanged"

    run = models.ForeignKey(ExportRun, on_delete=models.CASCADE, related_name="files")
    key = models.CharField(max_length=512)
    period = models.CharField(max_length=10, blank=True, help_text="YYYY-MM or YYYY-MM-DD.")
    action = models.CharField(max_length=16, choices=Action.choices)
    rows = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="exportfile_once_per_run")
        ]

    def __str__(self) -> str:
        return self.key


class HistoryMonth(models.Model):
    """The full-month history file in storage, as its manifest describes it."""

    month = models.DateField(unique=True, help_text="First day of the service month.")
    key = models.CharField(max_length=512)
    rows = models.BigIntegerField()
    invoices = models.BigIntegerField()
    totals_minor = models.JSONField(default=dict, help_text="Sum of invoice totals per currency.")
    sha256 = models.CharField(max_length=64)
    exported_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}"


class LegacyPdfCopy(models.Model):
    """One legacy invoice PDF and where it stands: copied into R2, already there, or missing."""

    class Status(models.TextChoices):
        COPIED = "copied", "Copied"
        PRESENT = "present", "Already in R2"
        MISSING = "missing", "Missing at source"

    inv_uuid = models.CharField(max_length=36, unique=True)
    acct_id = models.PositiveIntegerField(db_index=True)
    key = models.CharField(max_length=512)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    sha256 = models.CharField(max_length=64, blank=True)
    bytes = models.BigIntegerField(default=0)
    source = models.CharField(max_length=1000, blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["acct_id", "inv_uuid"]

    def __str__(self) -> str:
        return self.key
