"""The legacy billing database: unmanaged, read-only models on the `legacy` alias.

The schema this code assumes is `legacy_schema.sql` beside this file. Money in the legacy
tables is in major units (NUMERIC); every conversion to integer minor units happens here
through `billing_project.money.major_to_minor`.
"""

from pathlib import Path

from django.db import connections, models

from billing_project.classifier import LineKind
from billing_project.money import major_to_minor

LEGACY_ALIAS = "legacy"
SCHEMA_PATH = Path(__file__).with_name("legacy_schema.sql")


class LegacyModel(models.Model):
    """Marker base: the router sends these to the `legacy` alias and refuses writes."""

    class Meta:
        abstract = True
        managed = False


class LegacyAccount(LegacyModel):
    acct_id = models.IntegerField(primary_key=True)
    acct_name = models.CharField(max_length=200)
    billing_email = models.CharField(max_length=254, blank=True)
    billing_address = models.CharField(max_length=1000, blank=True)
    payment_customer_id = models.CharField(max_length=255, null=True)
    status = models.CharField(max_length=16, default="active")
    created = models.DateTimeField()

    class Meta(LegacyModel.Meta):
        db_table = "account"
        ordering = ["acct_id"]

    def __str__(self) -> str:
        return f"{self.acct_id} · {self.acct_name}"


class LegacyInvoice(LegacyModel):
    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        UNPAID = "unpaid", "Unpaid"
        FAILED = "failed", "Failed"

    inv_uuid = models.CharField(max_length=36, primary_key=True)
    account = models.ForeignKey(
        LegacyAccount, on_delete=models.DO_NOTHING, db_column="acct_id", related_name="invoices"
    )
    payment_customer_id = models.CharField(max_length=255, null=True)
    stripe_invoice_id = models.CharField(max_length=255, null=True)
    service_month = models.DateField()
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=16, choices=Status.choices)
    created = models.DateTimeField()

    class Meta(LegacyModel.Meta):
        db_table = "billing_invoice"
        ordering = ["service_month", "inv_uuid"]

    def __str__(self) -> str:
        return f"{self.inv_uuid} ({self.account_id}, {self.service_month:%Y-%m})"

    @property
    def acct_id(self) -> int:
        return self.account_id

    @property
    def total_minor(self) -> int:
        return major_to_minor(self.total, self.currency)


class LegacyInvoiceLine(LegacyModel):
    line_id = models.IntegerField(primary_key=True)
    invoice = models.ForeignKey(
        LegacyInvoice, on_delete=models.DO_NOTHING, db_column="inv_uuid", related_name="lines"
    )
    line_kind = models.CharField(max_length=16, choices=LineKind.choices)
    description = models.CharField(max_length=255, blank=True)
    quantity = models.BigIntegerField(default=1)
    rate = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta(LegacyModel.Meta):
        db_table = "billing_invoice_line"
        ordering = ["invoice_id", "line_id"]

    def __str__(self) -> str:
        return f"{self.invoice_id} · {self.line_kind} · {self.amount}"

    @property
    def amount_minor(self) -> int:
        return major_to_minor(self.amount, self.invoice.currency if self.invoice_id else "usd")


class LegacyPlanSub(LegacyModel):
    sub_id = models.IntegerField(primary_key=True)
    account = models.ForeignKey(
        LegacyAccount, on_delete=models.DO_NOTHING, db_column="acct_id", related_name="plan_subs"
    )
    sub_name = models.CharField(max_length=200)
    sub_invoice_line = models.CharField(max_length=255, blank=True)
    sub_rate = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta(LegacyModel.Meta):
        db_table = "account_plan_sub"
        ordering = ["account_id", "sub_id"]

    def __str__(self) -> str:
        return f"{self.account_id} · {self.sub_name} · {self.sub_rate}"

    @property
    def sub_rate_minor(self) -> int:
        return major_to_minor(self.sub_rate, "usd")


class LegacyPlanUsage(LegacyModel):
    usage_id = models.IntegerField(primary_key=True)
    account = models.ForeignKey(
        LegacyAccount, on_delete=models.DO_NOTHING, db_column="acct_id", related_name="plan_usages"
    )
    usage_type = models.CharField(max_length=2)
    usage_max = models.BigIntegerField(null=True, help_text="Exclusive ceiling; NULL = none.")
    usage_rate = models.DecimalField(
        max_digits=14, decimal_places=6, help_text="Dollars per 1,000 impressions."
    )

    class Meta(LegacyModel.Meta):
        db_table = "account_plan_usage"
        ordering = ["account_id", "usage_type", "usage_max"]

    def __str__(self) -> str:
        return f"{self.account_id} · {self.usage_type} < {self.usage_max} @ {self.usage_rate}"


class LegacyManagedServiceJob(LegacyModel):
    job_id = models.IntegerField(primary_key=True)
    account = models.ForeignKey(
        LegacyAccount, on_delete=models.DO_NOTHING, db_column="acct_id", related_name="managed_jobs"
    )
    job_name = models.CharField(max_length=200)
    service_month = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created = models.DateTimeField()

    class Meta(LegacyModel.Meta):
        db_table = "managed_service_job"
        ordering = ["service_month", "job_id"]

    def __str__(self) -> str:
        return f"{self.account_id} · {self.job_name} · {self.amount}"

    @property
    def amount_minor(self) -> int:
        return major_to_minor(self.amount, "usd")


def legacy_schema_statements() -> list[str]:
    """The statements of `legacy_schema.sql` (comments dropped), in order."""
    text = "\n".join(
        line for line in SCHEMA_PATH.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def legacy_schema_create(*, using: str = LEGACY_ALIAS) -> None:
    """Create the legacy tables if missing (tests and the demo only; production has them)."""
    with connections[using].cursor() as cursor:
        for statement in legacy_schema_statements():
            cursor.execute(statement)
