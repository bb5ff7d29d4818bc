"""Legacy invoices and their lines as history CSV rows, read in one streaming pass per month.

One row per invoice line, the invoice's columns repeated on each; an invoice without lines
has one row with the line columns empty. Money is integer minor units plus the currency.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db import connections
from django.db.models import Count
from django.db.models.functions import Collate

from billing_project.money import major_to_minor
from reconciliation.legacy import LegacyInvoice

COLUMNS = (
    "inv_uuid",
    "acct_id",
    "service_month",
    "status",
    "created",
    "currency",
    "invoice_total_minor",
    "payment_customer_id",
    "stripe_invoice_id",
    "line_id",
    "line_kind",
    "description",
    "quantity",
    "rate",
    "line_amount_minor",
)
CHUNK_ROWS = 5000

_FIELDS = (
    "inv_uuid",
    "account_id",
    "service_month",
    "status",
    "created",
    "currency",
    "total",
    "payment_customer_id",
    "stripe_invoice_id",
    "lines__line_id",
    "lines__line_kind",
    "lines__description",
    "lines__quantity",
    "lines__rate",
    "lines__amount",
)


def month_after(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _utc_text(value: datetime) -> str:
    if value.tzinfo is None:  # the legacy column is a UTC timestamp without zone
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class MonthStats:
    """What a month holds: counted from the database or from a file, compared field by field."""

    rows: int = 0
    invoices: int = 0
    lines: int = 0
    totals_minor: dict[str, int] = field(default_factory=dict)
    line_amounts_minor: dict[str, int] = field(default_factory=dict)
    first_invoice: str = ""
    last_invoice: str = ""
    content_sha256: str = ""

    def add_invoice(self, inv_uuid: str, currency: str, total_minor: int) -> None:
        self.invoices += 1
        self.totals_minor[currency] = self.totals_minor.get(currency, 0) + total_minor
        if not self.first_invoice:
            self.first_invoice = inv_uuid
        self.last_invoice = inv_uuid

    def add_line(self, currency: str, amount_minor: int) -> None:
        self.lines += 1
        self.line_amounts_minor[currency] = self.line_amounts_minor.get(currency, 0) + amount_minor

    def as_manifest(self) -> dict:
        return {
            "rows": self.rows,
            "invoices": self.invoices,
            "lines": self.lines,
            "totals_minor": dict(sorted(self.totals_minor.items())),
            "line_amounts_minor": dict(sorted(self.line_amounts_minor.items())),
            "first_invoice": self.first_invoice,
            "last_invoice": self.last_invoice,
            "content_sha256": self.content_sha256,
        }

    def differences(self, expected: dict, *, fingerprint: bool = True) -> list[str]:
        """Fields that differ from a manifest entry, as `field: found != expected` texts.

        `fingerprint=False` leaves the content hash out (to compare counts and sums only).
        """
        mine = self.as_manifest()
        if not fingerprint:
            mine.pop("content_sha256")
        return [
            f"{name}: {mine[name]!r} != {expected.get(name)!r}"
            for name in mine
            if mine[name] != expected.get(name)
        ]


def history_queryset(*, month: date, acct_ids: Iterable[int] | None = None):
    queryset = LegacyInvoice.objects.filter(
        service_month__gte=month, service_month__lt=month_after(month)
    )
    if acct_ids is not None:
        queryset = queryset.filter(account_id__in=list(acct_ids))
    return queryset


def history_rows(
    *, month: date, stats: MonthStats, acct_ids: Iterable[int] | None = None
) -> Iterator[tuple]:
    """CSV rows of one service month, ordered by invoice then line; `stats` counts them.

    Streams through a server-side cursor on PostgreSQL (`iterator(chunk_size=…)`).
    """
    queryset = history_queryset(month=month, acct_ids=acct_ids)
    # Byte order of the ids, as `history_source` orders them on PostgreSQL.
    on_postgresql = connections[queryset.db].vendor == "postgresql"
    by_id = Collate("inv_uuid", "C") if on_postgresql else "inv_uuid"
    queryset = queryset.order_by(by_id, "lines__line_id").values_list(*_FIELDS)
    current = None
    for (
        inv_uuid,
        acct_id,
        service_month,
        status,
        created,
        currency,
        total,
        customer,
        stripe_invoice_id,
        line_id,
        line_kind,
        description,
        quantity,
        rate,
        amount,
    ) in queryset.iterator(chunk_size=CHUNK_ROWS):
        if inv_uuid != current:
            current = inv_uuid
            total_minor = major_to_minor(total, currency)
            stats.add_invoice(inv_uuid, currency, total_minor)
            head = (
                inv_uuid,
                acct_id,
                service_month.isoformat(),
                status,
                _utc_text(created),
                currency,
                total_minor,
                customer or "",
                stripe_invoice_id or "",
            )
        stats.rows += 1
        if line_id is None:
            yield (*head, "", "", "", "", "", "")
            continue
        amount_minor = major_to_minor(amount, currency)
        stats.add_line(currency, amount_minor)
        yield (*head, line_id, line_kind, description, quantity, rate, amount_minor)


def history_months(*, first: date | None, last: date | None) -> list[date]:
    """Service months (first days) that hold legacy invoices, within [first, last]."""
    queryset = LegacyInvoice.objects.all()
    if first:
        queryset = queryset.filter(service_month__gte=first)
    if last:
        queryset = queryset.filter(service_month__lt=month_after(last))
    days = queryset.order_by().values_list("service_month", flat=True).distinct()
    return sorted({day.replace(day=1) for day in days})


def history_invoice_count(*, months: Iterable[date], acct_ids: Iterable[int] | None = None) -> int:
    """Invoices in the given service months (for progress and ETA)."""
    months = list(months)
    if not months:
        return 0
    queryset = LegacyInvoice.objects.filter(
        service_month__gte=min(months), service_month__lt=month_after(max(months))
    )
    if acct_ids is not None:
        queryset = queryset.filter(account_id__in=list(acct_ids))
    wanted = {(m.year, m.month) for m in months}
    counts = queryset.values_list("service_month").annotate(count=Count("inv_uuid")).order_by()
    return sum(count for day, count in counts if (day.year, day.month) in wanted)
