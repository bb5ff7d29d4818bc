"""Writes of usage ingestion: producer tokens and the usage ledger.

A batch is written set-based (`usage_ledger.py`: one `INSERT … ON CONFLICT DO NOTHING` on the
unique key `(account, period, usage_type)`, with the first outbox row of each record created).
Concurrent identical posts therefore create one record and one outbox row; the others read it
back as a duplicate. A correction locks its record, stores the new quantity as the next revision
and queues only the difference.
"""

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

from billing_project.datapoints import datapoint_record

from .usage_ledger import NewUsage, usage_ledger_write
from .usage_models import ProducerToken, UsageRecord, UsageRevision

TOKEN_PREFIX = "mtp_"  # noqa: S105 (a label, not a secret)
TOKEN_LAST_USED_RESOLUTION = timedelta(minutes=1)


class ItemStatus:
    CREATED = "created"
    DUPLICATE = "duplicate"
    CORRECTED = "corrected"
    CONFLICT = "conflict"
    INVALID = "invalid"


@dataclass(frozen=True)
class UsageItem:
    """One validated usage item of a request; `index` is its position in the request."""

    index: int
    acct_id: int
    period: date
    usage_type: str
    quantity: int
    correction: bool = False

    @property
    def key(self) -> str:
        return usage_key(self.acct_id, self.period, self.usage_type)


@dataclass
class ItemResult:
    index: int
    status: str
    key: str | None = None
    quantity: int | None = None
    stored_quantity: int | None = None
    revision: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        body: dict = {"index": self.index, "status": self.status}
        if self.key is not None:
            body["key"] = self.key
        if self.quantity is not None:
            body["quantity"] = self.quantity
        if self.stored_quantity is not None:
            body["stored_quantity"] = self.stored_quantity
        if self.revision is not None:
            body["revision"] = self.revision
        if self.errors:
            body["errors"] = self.errors
        return body


def usage_key(acct_id: int, period: date, usage_type: str) -> str:
    """The idempotency key `{acct_id}:{period}:{type}`."""
    return f"{acct_id}:{period.isoformat()}:{usage_type}"


def revision_identifier(key: str, revision: int) -> str:
    """The Stripe meter event identifier of one revision: the key plus the revision."""
    return f"{key}:{revision}"


def event_timestamp_for(period: date, now: datetime) -> datetime:
    """A moment inside the period's UTC day, never in the future: the day's last second, or
    now while the day is still running."""
    day_end = datetime.combine(period + timedelta(days=1), time(), tzinfo=UTC) - timedelta(
        seconds=1
    )
    return min(day_end, now)


# --- Producer tokens ----------------------------------------------------------------------------


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def producer_token_create(*, name: str, by=None) -> tuple[ProducerToken, str]:
    """A new token; the raw value is returned once and only its SHA-256 is stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ProducerToken.objects.create(
        name=name.strip() or "producer",
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        token_sha256=token_hash(raw),
        created_by=by,
    )
    return token, raw


def producer_token_revoke(*, token_id: int) -> ProducerToken:
    """Revoke a token (idempotent: the first revocation time is kept)."""
    ProducerToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return ProducerToken.objects.get(pk=token_id)


def producer_token_authenticate(raw: str) -> ProducerToken | None:
    """The active token with this value, or None. Notes its use at most once a minute.

    One indexed lookup in plain SQL: it runs on every request, and the ORM's query building
    would cost more than the query itself."""
    table = ProducerToken._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, name, prefix, last_used_at FROM {table} "  # noqa: S608 (our table name)
            "WHERE token_sha256 = %s AND revoked_at IS NULL",
            [token_hash(raw)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    token = ProducerToken(pk=row[0], name=row[1], prefix=row[2], last_used_at=row[3])
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_LAST_USED_RESOLUTION:
        ProducerToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


# --- Usage ledger -------------------------------------------------------------------------------


def usage_record_batch(
    *,
    items: Sequence[UsageItem],
    producer: ProducerToken | None = None,
    now: datetime | None = None,
) -> list[ItemResult]:
    """Record validated items; one result per item. Idempotent per key: a repeated item is a
    `duplicate`, a different quantity a `conflict` unless the item is a correction."""
    now = now or timezone.now()
    results: dict[int, ItemResult] = {}
    first_index: dict[str, int] = {}
    accepted: list[UsageItem] = []
    for item in items:
        key = item.key
        if key in first_index:
            results[item.index] = ItemResult(
                item.index,
                ItemStatus.INVALID,
                key=key,
                errors={"key": f"{key} appears more than once (first at index {first_index[key]})"},
            )
        else:
            first_index[key] = item.index
            accepted.append(item)
    if accepted:
        results.update(_write(accepted, producer, now))
    return [results[item.index] for item in items]


def _write(
    items: list[UsageItem], producer: ProducerToken | None, now: datetime
) -> dict[int, ItemResult]:
    producer_id = producer.pk if producer else None
    stored = usage_ledger_write(
        rows=[
            NewUsage(
                acct_id=item.acct_id,
                period=item.period,
                usage_type=item.usage_type,
                quantity=item.quantity,
                identifier=revision_identifier(item.key, 1),
                event_timestamp=event_timestamp_for(item.period, now),
            )
            for item in items
        ],
        producer_id=producer_id,
        ingest_id=uuid.uuid4(),
        now=now,
    )
    results: dict[int, ItemResult] = {}
    corrections: list[tuple[UsageItem, int]] = []
    for item, row in zip(items, stored, strict=True):
        key = item.key
        if row.record_id is None:
            results[item.index] = ItemResult(
                item.index,
                ItemStatus.INVALID,
                key=key,
                errors={"acct_id": f"no billing account has acct_id {item.acct_id}"},
            )
        elif row.created:
            results[item.index] = ItemResult(
                item.index, ItemStatus.CREATED, key=key, quantity=item.quantity, revision=1
            )
        elif row.quantity == item.quantity:
            results[item.index] = ItemResult(
                item.index, ItemStatus.DUPLICATE, key=key, quantity=row.quantity
            )
        elif item.correction:
            corrections.append((item, row.record_id))
        else:
            results[item.index] = ItemResult(
                item.index,
                ItemStatus.CONFLICT,
                key=key,
                quantity=item.quantity,
                stored_quantity=row.quantity,
                errors={
                    "quantity": (
                        f"{key} is already recorded with quantity {row.quantity}; "
                        'send "correction": true to replace it'
                    )
                },
            )
    # Locks in one order (record id) so concurrent corrections queue instead of deadlocking.
    for item, record_id in sorted(corrections, key=lambda pair: pair[1]):
        with transaction.atomic():
            results[item.index] = _correct(item, record_id, producer_id, now)
    return results


def _correct(item: UsageItem, record_id: int, producer_id: int | None, now: datetime) -> ItemResult:
    record = UsageRecord.objects.select_for_update().get(pk=record_id)
    key = item.key
    if record.quantity == item.quantity:
        return ItemResult(item.index, ItemStatus.DUPLICATE, key=key, quantity=record.quantity)
    delta = item.quantity - record.quantity
    record.revision += 1
    record.quantity = item.quantity
    record.producer_id = producer_id
    record.updated_at = now
    record.save(update_fields=["revision", "quantity", "producer", "updated_at"])
    UsageRevision.objects.create(
        record=record,
        revision=record.revision,
        quantity=item.quantity,
        delta=delta,
        identifier=revision_identifier(key, record.revision),
        event_timestamp=event_timestamp_for(item.period, now),
        next_attempt_at=now,
        created_at=now,
    )
    datapoint_record(
        name="usage_corrected",
        dimensions={"key": key, "revision": record.revision, "delta": delta},
        at=now,
    )
    return ItemResult(
        item.index, ItemStatus.CORRECTED, key=key, quantity=item.quantity, revision=record.revision
    )
