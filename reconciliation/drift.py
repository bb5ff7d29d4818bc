"""Drift records: one per account and service month, followed up by people, never deleted.

open -> investigating -> resolved | explained, each change with who and a note. A later run
that finds the drift again updates the record and appends to its history; a record marked
resolved is reopened (the fix did not hold), and so is an explained one whose delta changed.
"""

from collections.abc import Iterable
from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from billing_project.errors import BillingError, ConflictError

from .comparison import Compared
from .models import DriftRecord, DriftRecordEvent, ReconciliationRun

Status = DriftRecord.Status
TRANSITIONS = {
    Status.OPEN: {Status.INVESTIGATING, Status.RESOLVED, Status.EXPLAINED},
    Status.INVESTIGATING: {Status.OPEN, Status.RESOLVED, Status.EXPLAINED},
    Status.RESOLVED: {Status.OPEN},
    Status.EXPLAINED: {Status.OPEN},
}
NOTE_REQUIRED = {Status.RESOLVED, Status.EXPLAINED}
SNAPSHOT_FIELDS = (
    "cohort_number",
    "currency",
    "stripe_total_minor",
    "legacy_total_minor",
    "delta_minor",
    "reason",
    "stripe_invoice_ids",
    "legacy_inv_uuids",
)


def _snapshot(row: Compared) -> dict:
    return {
        "cohort_number": row.cohort_number,
        "currency": row.currency,
        "stripe_total_minor": row.stripe_total_minor,
        "legacy_total_minor": row.legacy_total_minor,
        "delta_minor": row.delta_minor,
        "reason": row.reason,
        "stripe_invoice_ids": row.stripe_invoice_ids,
        "legacy_inv_uuids": row.legacy_inv_uuids,
    }


def drift_records_detect(
    *, run: ReconciliationRun, rows: Iterable[Compared], at: datetime
) -> list[DriftRecord]:
    """Create or update the drift record of each drifting row, with a history event each.

    Called inside the run's transaction; a fixed number of queries for any number of rows."""
    rows = list(rows)
    month = run.service_month
    existing = {
        record.account_id: record
        for record in DriftRecord.objects.select_for_update().filter(
            service_month=month, account_id__in=[row.account.pk for row in rows]
        )
    }
    new, changed, events = [], [], []
    for row in rows:
        record = existing.get(row.account.pk)
        if record is None:
            record = DriftRecord(
                account=row.account,
                acct_id=row.account.acct_id,
                service_month=month,
                kinds=row.drift_kinds,
                first_run=run,
                last_run=run,
                first_detected_at=at,
                last_detected_at=at,
                **_snapshot(row),
            )
            new.append(record)
            events.append(
                DriftRecordEvent(
                    record=record,
                    at=at,
                    action=DriftRecordEvent.Action.DETECTED,
                    run=run,
                    to_status=Status.OPEN,
                    delta_minor=row.delta_minor,
                )
            )
            continue
        was = record.status
        reopen = was == Status.RESOLVED or (
            was == Status.EXPLAINED and record.delta_minor != row.delta_minor
        )
        for name, value in _snapshot(row).items():
            setattr(record, name, value)
        record.kinds = row.drift_kinds
        record.last_run = run
        record.last_detected_at = at
        record.detections += 1
        if reopen:
            record.status = Status.OPEN
        changed.append(record)
        events.append(
            DriftRecordEvent(
                record=record,
                at=at,
                action=DriftRecordEvent.Action.REDETECTED,
                run=run,
                from_status=was,
                to_status=record.status,
                delta_minor=row.delta_minor,
                note="reopened: the drift is still there" if reopen else "",
            )
        )
    DriftRecord.objects.bulk_create(new)
    if changed:
        DriftRecord.objects.bulk_update(
            changed,
            [*SNAPSHOT_FIELDS, "kinds", "last_run", "last_detected_at", "detections", "status"],
        )
    DriftRecordEvent.objects.bulk_create(events)
    return new + changed


def drift_records_seen_clean(
    *, run: ReconciliationRun, account_ids: Iterable[int], month: date, at: datetime
) -> int:
    """Note on still-open records that this run found their month clean. Two queries: the
    month's open records are few, the clean accounts many, so they are matched here."""
    clean = set(account_ids)
    records = [
        record
        for record in DriftRecord.objects.filter(
            service_month=month, status__in=(Status.OPEN, Status.INVESTIGATING)
        ).only("id", "status", "account_id")
        if record.account_id in clean
    ]
    DriftRecordEvent.objects.bulk_create(
        DriftRecordEvent(
            record_id=record.pk,
            at=at,
            action=DriftRecordEvent.Action.SEEN_CLEAN,
            run_id=run.pk,
            from_status=record.status,
            to_status=record.status,
            delta_minor=0,
        )
        for record in records
    )
    return len(records)


def _who(by: AbstractBaseUser | None) -> str:
    return by.get_username() if by is not None else ""


def drift_record_transition(
    *, record_id: int, to_status: str, note: str = "", by: AbstractBaseUser | None = None
) -> DriftRecord:
    """Move a record to `to_status` with a note and who did it. Idempotent for the same
    status (nothing changes); a transition not allowed raises ConflictError."""
    note = note.strip()
    try:
        target = Status(to_status)
    except ValueError as exc:
        raise BillingError(f"unknown drift status {to_status!r}", field="status") from exc
    if target in NOTE_REQUIRED and not note:
        raise BillingError(
            f"a note is required to mark a drift record {target.label.lower()}", field="note"
        )
    with transaction.atomic():
        record = DriftRecord.objects.select_for_update().get(pk=record_id)
        if record.status == target:
            return record
        if target not in TRANSITIONS[Status(record.status)]:
            raise ConflictError(
                f"drift record {record.pk} is {record.status}: it cannot become {target}",
                field="status",
            )
        now = timezone.now()
        DriftRecordEvent.objects.create(
            record=record,
            at=now,
            action=DriftRecordEvent.Action.STATUS_CHANGED,
            from_status=record.status,
            to_status=target,
            delta_minor=record.delta_minor,
            note=note,
            by=by,
            by_name=_who(by),
        )
        record.status = target
        if note:
            record.note = note
        record.status_changed_by = by
        record.status_changed_at = now
        record.save(update_fields=["status", "note", "status_changed_by", "status_changed_at"])
    return record


def drift_record_note(
    *, record_id: int, note: str, by: AbstractBaseUser | None = None
) -> DriftRecord:
    """Add a note to a record's history (and as its latest note) without changing status."""
    note = note.strip()
    if not note:
        raise BillingError("the note is empty", field="note")
    with transaction.atomic():
        record = DriftRecord.objects.select_for_update().get(pk=record_id)
        DriftRecordEvent.objects.create(
            record=record,
            at=timezone.now(),
            action=DriftRecordEvent.Action.NOTED,
            from_status=record.status,
            to_status=record.status,
            note=note,
            by=by,
            by_name=_who(by),
        )
        record.note = note
        record.save(update_fields=["note"])
    return record
