"""Set-based writes of the usage ledger.

On PostgreSQL a batch is one statement: the accounts are resolved by `acct_id`, the records
inserted with `INSERT … ON CONFLICT DO NOTHING RETURNING`, the first outbox row of each record
created is inserted in the same statement (so in the same transaction), and every item comes
back with its record: created now, or stored before. A key inserted by a concurrent request
that committed after this statement began is read back by a second statement: the conflicting
insert waited for that commit, so the row is visible then. Records are inserted in key order,
so concurrent batches queue on shared keys instead of deadlocking.

Other databases (the SQLite local default) take the same steps through the ORM.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection, transaction

from .models import BillingAccount
from .usage_models import UsageRecord, UsageRevision

Key = tuple[int, date, str]  # (account id, period, usage type)


@dataclass(frozen=True)
class NewUsage:
    acct_id: int
    period: date
    usage_type: str
    quantity: int
    identifier: str
    event_timestamp: datetime


@dataclass(frozen=True)
class Stored:
    """What the ledger holds for one item; `record_id` None: no account has its acct_id."""

    account_id: int | None
    record_id: int | None
    quantity: int | None
    created: bool


_WRITE = """
WITH new (acct_id, period, usage_type, quantity, identifier, event_timestamp, ord) AS (
    SELECT * FROM unnest(
        %(acct_ids)s::bigint[], %(periods)s::date[], %(types)s::varchar[],
        %(quantities)s::bigint[], %(identifiers)s::varchar[], %(timestamps)s::timestamptz[]
    ) WITH ORDINALITY
),
known AS (
    SELECT new.*, a.id AS account_id FROM new JOIN {accounts} a ON a.acct_id = new.acct_id
),
records AS (
    INSERT INTO {records} AS r
        (account_id, period, usage_type, quantity, revision, producer_id, ingest_id,
         created_at, updated_at)
    SELECT account_id, period, usage_type, quantity, 1, %(producer)s, %(ingest)s,
           %(now)s, %(now)s
    FROM known ORDER BY account_id, period, usage_type
    ON CONFLICT (account_id, period, usage_type) DO NOTHING
    RETURNING r.id, r.account_id, r.period, r.usage_type, r.quantity
),
outbox AS (
    INSERT INTO {revisions}
        (record_id, revision, quantity, delta, identifier, event_timestamp, state, attempts,
         next_attempt_at, last_error, too_late_reason, resolution_note, created_at)
    SELECT records.id, 1, records.quantity, records.quantity, known.identifier,
           known.event_timestamp, %(pending)s, 0, %(now)s, '', '', '', %(now)s
    FROM records JOIN known USING (account_id, period, usage_type)
    WHERE records.quantity <> 0
)
SELECT known.account_id, coalesce(records.id, old.id), coalesce(records.quantity, old.quantity),
       records.id IS NOT NULL
FROM new
LEFT JOIN known ON known.ord = new.ord
LEFT JOIN records ON records.account_id = known.account_id
    AND records.period = known.period AND records.usage_type = known.usage_type
LEFT JOIN {records} old ON old.account_id = known.account_id
    AND old.period = known.period AND old.usage_type = known.usage_type
ORDER BY new.ord
"""

_GET = """
SELECT r.account_id, r.period, r.usage_type, r.id, r.quantity
FROM {records} r
JOIN unnest(%s::bigint[], %s::date[], %s::varchar[]) AS k (account_id, period, usage_type)
  ON r.account_id = k.account_id AND r.period = k.period AND r.usage_type = k.usage_type
"""


def usage_ledger_write(
    *, rows: list[NewUsage], producer_id: int | None, ingest_id: uuid.UUID, now: datetime
) -> list[Stored]:
    """Insert the rows whose key is new, each with its first outbox row (none for a zero
    quantity: it adds nothing to a meter); what is stored for every row, in order. Atomic."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        return _write_orm(rows, producer_id, ingest_id, now)
    sql = _WRITE.format(
        accounts=BillingAccount._meta.db_table,
        records=UsageRecord._meta.db_table,
        revisions=UsageRevision._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "acct_ids": [r.acct_id for r in rows],
                "periods": [r.period for r in rows],
                "types": [r.usage_type for r in rows],
                "quantities": [r.quantity for r in rows],
                "identifiers": [r.identifier for r in rows],
                "timestamps": [r.event_timestamp for r in rows],
                "producer": producer_id,
                "ingest": ingest_id,
                "now": now,
                "pending": UsageRevision.State.PENDING,
            },
        )
        stored = [Stored(*row) for row in cursor.fetchall()]
    racing = [
        (s.account_id, r.period, r.usage_type)
        for s, r in zip(stored, rows, strict=True)
        if s.account_id is not None and s.record_id is None
    ]
    if racing:
        found = _get(racing)
        stored = [
            Stored(s.account_id, *found[(s.account_id, r.period, r.usage_type)], created=False)
            if s.account_id is not None and s.record_id is None
            else s
            for s, r in zip(stored, rows, strict=True)
        ]
    return stored


def _get(keys: list[Key]) -> dict[Key, tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            _GET.format(records=UsageRecord._meta.db_table),
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
        )
        return {(a, p, t): (pk, q) for a, p, t, pk, q in cursor.fetchall()}


def _write_orm(
    rows: list[NewUsage], producer_id: int | None, ingest_id: uuid.UUID, now: datetime
) -> list[Stored]:
    accounts = dict(
        BillingAccount.objects.filter(acct_id__in={r.acct_id for r in rows}).values_list(
            "acct_id", "id"
        )
    )
    known = sorted(
        (r for r in rows if r.acct_id in accounts),
        key=lambda r: (accounts[r.acct_id], r.period, r.usage_type),
    )
    with transaction.atomic():
        UsageRecord.objects.bulk_create(
            [
                UsageRecord(
                    account_id=accounts[r.acct_id],
                    period=r.period,
                    usage_type=r.usage_type,
                    quantity=r.quantity,
                    producer_id=producer_id,
                    ingest_id=ingest_id,
                    created_at=now,
                    updated_at=now,
                )
                for r in known
            ],
            ignore_conflicts=True,
        )
        found = {
            (a, p, t): (pk, q, ingest == ingest_id)
            for pk, a, p, t, q, ingest in UsageRecord.objects.filter(
                account_id__in=set(accounts.values()), period__in={r.period for r in known}
            ).values_list("id", "account_id", "period", "usage_type", "quantity", "ingest_id")
        }
        UsageRevision.objects.bulk_create(
            [
                UsageRevision(
                    record_id=found[key][0],
                    revision=1,
                    quantity=r.quantity,
                    delta=r.quantity,
                    identifier=r.identifier,
                    event_timestamp=r.event_timestamp,
                    next_attempt_at=now,
                    created_at=now,
                )
                for r in known
                if found[key := (accounts[r.acct_id], r.period, r.usage_type)][2]
                and r.quantity != 0
            ]
        )
    stored = []
    for r in rows:
        account_id = accounts.get(r.acct_id)
        if account_id is None:
            stored.append(Stored(None, None, None, created=False))
            continue
        record_id, quantity, created = found[(account_id, r.period, r.usage_type)]
        stored.append(Stored(account_id, record_id, quantity, created))
    return stored
