"""Service months of history as CSV bytes, read from the legacy database.

On PostgreSQL the database formats the CSV itself: one `COPY (SELECT …) TO STDOUT` over all
the months asked for (one hash join of invoices and lines, sorted by month, invoice, line),
split here into months as the stream goes by, counting rows, invoices and sums from the bytes
themselves. No row becomes a Python object and memory stays flat. Elsewhere (the embedded
SQLite demo) the rows stream through the ORM (`history_rows`) and are formatted by the same
rules, so both give identical bytes: fields quoted only when they hold a comma, a quote, CR
or LF; an empty or missing value is an empty field; lines end with LF.

Each month's stats carry `content_sha256`, the sha256 of its CSV: it changes whenever any of
its rows change, and it is the same whichever path produced the bytes.
"""

from collections.abc import Callable, Iterable
from datetime import date
from typing import IO

from django.db import connections, transaction

from billing_project.money import ZERO_DECIMAL_CURRENCIES, MoneyError
from reconciliation.legacy import LEGACY_ALIAS

from .gzfiles import HashingSink
from .history_rows import COLUMNS, MonthStats, history_rows

HEADER = (",".join(COLUMNS) + "\n").encode()
_SPECIAL = (",", '"', "\r", "\n")
NOT_WHOLE = "not-whole:"
_NEWLINE, _QUOTE, _COMMA = b"\n", b'"', b","

# Minor units per major unit by currency, as `billing_project.money.minor_exponent` has it.
_ZERO_DECIMAL = ", ".join(f"'{code}'" for code in sorted(ZERO_DECIMAL_CURRENCIES))
_SCALE = f"CASE WHEN lower(i.currency) IN ({_ZERO_DECIMAL}) THEN 1 ELSE 100 END"


def _minor(column: str) -> str:
    """The amount in minor units as text; an amount finer than the minor unit is not rounded
    but marked, and refused when the row is read."""
    value = f"({column} * {_SCALE})"
    return (
        f"CASE WHEN {value} = trunc({value}) THEN {value}::bigint::text "
        f"ELSE '{NOT_WHOLE}' || {value}::text END"
    )


_MONTH = "date_trunc('month', i.service_month)::date"
_WHERE = f"{_MONTH} = ANY(%(months)s)"
_ACCOUNTS = " AND i.acct_id = ANY(%(accounts)s)"

# Built from constants only; values are bound parameters.
_ROWS_SQL = f"""
SELECT i.inv_uuid, i.acct_id, to_char(i.service_month, 'YYYY-MM-DD'), i.status,
       to_char(i.created, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), i.currency,
       {_minor("i.total")},
       NULLIF(i.payment_customer_id, ''), NULLIF(i.stripe_invoice_id, ''),
       l.line_id, NULLIF(l.line_kind, ''), NULLIF(l.description, ''), l.quantity, l.rate,
       {_minor("l.amount")}
FROM billing_invoice i LEFT JOIN billing_invoice_line l ON l.inv_uuid = i.inv_uuid
WHERE {_WHERE}{{accounts}}
ORDER BY {_MONTH}, i.inv_uuid COLLATE "C", l.line_id
"""  # noqa: S608
OpenMonth = Callable[[date], IO[bytes]]
CloseMonth = Callable[[date, MonthStats], None]


def _csv_field(value) -> str:
    if value is None:
        return ""
    text = str(value)
    if any(char in text for char in _SPECIAL):
        return '"' + text.replace('"', '""') + '"'
    return text


def _uses_copy() -> bool:
    return connections[LEGACY_ALIAS].vendor == "postgresql"


def _sql(template: str, acct_ids: list[int] | None) -> str:
    return template.replace("{accounts}", _ACCOUNTS if acct_ids is not None else "")


def _minor_int(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise MoneyError(
            f"{text.decode().removeprefix(NOT_WHOLE)} is not a whole number of minor units"
        ) from None


class _MonthSplitter:
    """Cuts a CSV stream ordered by month into months, at record boundaries, and counts.

    A newline ends a record unless it sits inside a quoted field; quotes inside quoted fields
    are doubled, so the parity of the quotes seen tells which. The first seven fields never
    hold a comma or a quote (ids, dates, status, currency, total): a record's month is the
    start of its third field, its invoice the first, the invoice's currency and total the
    sixth and seventh. The last field (the line amount) is a bare integer, or empty when the
    invoice has no lines.
    """

    def __init__(self, on_open: OpenMonth, on_close: CloseMonth) -> None:
        self.on_open = on_open
        self.on_close = on_close
        self.label = b""
        self.month: date | None = None
        self.sink: HashingSink | None = None
        self.stats = MonthStats()
        self.invoice = b""
        self.currency = ""
        self.inside = False
        self.carry = b""

    def _switch(self, label: bytes) -> None:
        self._close()
        self.label = label
        self.month = date(int(label[:4]), int(label[5:7]), 1)
        self.stats = MonthStats()
        self.sink = HashingSink(self.on_open(self.month))
        self.sink.write(HEADER)

    def _close(self) -> None:
        if self.sink is not None:
            self.stats.content_sha256 = self.sink.hexdigest
            self.on_close(self.month, self.stats)
            self.sink = None

    def feed(self, data: bytes) -> None:
        data = self.carry + data
        pos = written = 0
        stats = self.stats
        while (end := data.find(_NEWLINE, pos)) >= 0:
            if not self.inside:  # a record starts here
                first = data.find(_COMMA, pos, end)
                if data[pos:first] != self.invoice:
                    fields = data[pos:end].split(_COMMA, 7)
                    if fields[2][:7] != self.label:
                        if self.sink is not None:
                            self.sink.write(data[written:pos])
                        self._switch(fields[2][:7])
                        stats = self.stats
                        written = pos
                    self.invoice = fields[0]
                    self.currency = fields[5].decode()
                    stats.add_invoice(fields[0].decode(), self.currency, _minor_int(fields[6]))
            if data.count(_QUOTE, pos, end) & 1:
                self.inside = not self.inside
            if not self.inside:  # the record ends here
                stats.rows += 1
                amount = data[data.rfind(_COMMA, pos, end) + 1 : end]
                if amount:
                    stats.add_line(self.currency, _minor_int(amount))
            pos = end + 1
        if self.sink is not None and pos > written:
            self.sink.write(data[written:pos])
        self.carry = data[pos:]

    def finish(self) -> None:
        if self.carry or self.inside:
            raise ValueError("the CSV stream ended inside a record")
        self._close()


def _pg_stream(
    months: list[date], acct_ids: list[int] | None, on_open: OpenMonth, on_close: CloseMonth
) -> None:
    connection = connections[LEGACY_ALIAS]
    nested = connection.in_atomic_block
    splitter = _MonthSplitter(on_open, on_close)
    with transaction.atomic(using=LEGACY_ALIAS), connection.cursor() as cursor:
        if not nested:  # inside a caller's transaction the caller chose the isolation
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        raw = cursor.cursor  # psycopg's own cursor: COPY is not part of the DB-API
        query = raw.mogrify(_sql(_ROWS_SQL, acct_ids), {"months": months, "accounts": acct_ids})
        with raw.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
            buffered: list[bytes] = []
            size = 0
            for block in copy:  # one message per row: cut the stream in ~1 MB pieces
                buffered.append(block)
                size += len(block)
                if size >= 1 << 20:
                    splitter.feed(b"".join(buffered))
                    buffered, size = [], 0
            splitter.feed(b"".join(buffered))
    splitter.finish()


def _orm_stream(
    months: list[date], acct_ids: list[int] | None, on_open: OpenMonth, on_close: CloseMonth
) -> None:
    for month in months:
        stats = MonthStats()
        rows = history_rows(month=month, stats=stats, acct_ids=acct_ids)
        first = next(rows, None)
        if first is None:
            continue
        sink = on_open(month)
        content = HashingSink(sink)
        content.write(HEADER)
        buffer = [first]
        for row in rows:
            buffer.append(row)
            if len(buffer) >= 1000:
                content.write(_csv_lines(buffer))
                buffer.clear()
        content.write(_csv_lines(buffer))
        stats.content_sha256 = content.hexdigest
        on_close(month, stats)


def _csv_lines(rows: list[tuple]) -> bytes:
    return "".join(",".join(_csv_field(v) for v in row) + "\n" for row in rows).encode()


def history_stream(
    *,
    months: Iterable[date],
    on_open: OpenMonth,
    on_close: CloseMonth,
    acct_ids: Iterable[int] | None = None,
    via_orm: bool = False,
) -> None:
    """Stream the CSV of each month (that has invoices) in `months`, in order: `on_open(month)`
    returns the sink its bytes go to, header first; `on_close(month, stats)` follows its last
    byte. `via_orm` forces the portable path (default: COPY on PostgreSQL)."""
    ordered = sorted(set(months))
    selected = sorted(set(acct_ids)) if acct_ids is not None else None
    if not ordered:
        return
    if not via_orm and _uses_copy():
        _pg_stream(ordered, selected, on_open, on_close)
    else:
        _orm_stream(ordered, selected, on_open, on_close)


def history_fingerprints(
    *, months: Iterable[date], acct_ids: Iterable[int] | None = None
) -> dict[date, MonthStats]:
    """Each month's counts, sums and CSV sha256 as the database holds them now (the CSV is
    produced and hashed, not compressed or stored)."""
    found: dict[date, MonthStats] = {}
    history_stream(
        months=months,
        acct_ids=acct_ids,
        on_open=lambda month: None,
        on_close=lambda month, stats: found.__setitem__(month, stats),
    )
    return found


def history_month_csv(
    *, month: date, sink: IO[bytes], acct_ids: Iterable[int] | None = None, via_orm: bool = False
) -> MonthStats:
    """One month's CSV written to `sink` (header only when it has no invoices); its stats."""
    found: list[MonthStats] = []
    history_stream(
        months=[month],
        acct_ids=acct_ids,
        via_orm=via_orm,
        on_open=lambda _month: sink,
        on_close=lambda _month, stats: found.append(stats),
    )
    if not found:
        sink.write(HEADER)
        return MonthStats()
    return found[0]
