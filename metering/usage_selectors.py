"""Reads of the usage ledger and its outbox."""

from datetime import date, datetime

from django.db.models import Count, Max, Q, QuerySet, Sum

from .usage_models import UsageRecord, UsageRevision

Lane = tuple[int, str]


def usage_outbox_due_lanes(*, now: datetime) -> list[Lane]:
    """(account id, usage type) lanes holding pending revisions due by `now`, oldest first."""
    rows = (
        UsageRevision.objects.filter(state=UsageRevision.State.PENDING, next_attempt_at__lte=now)
        .values_list("record__account_id", "record__usage_type")
        .order_by("record__account_id", "record__usage_type")
        .distinct()
    )
    return list(rows)


def usage_outbox_lane_due(*, lane: Lane, now: datetime, limit: int) -> list[UsageRevision]:
    """A lane's due pending revisions, in the order they were made."""
    account_id, usage_type = lane
    return list(
        UsageRevision.objects.filter(
            record__account_id=account_id,
            record__usage_type=usage_type,
            state=UsageRevision.State.PENDING,
            next_attempt_at__lte=now,
        )
        .select_related("record", "record__account")
        .order_by("id")[:limit]
    )


def usage_revision_list(*, state: str | None = None) -> QuerySet[UsageRevision]:
    revisions = UsageRevision.objects.select_related("record", "record__account")
    return revisions.filter(state=state) if state else revisions


def usage_month_totals(
    *, account_ids: list[int], start: date, end: date
) -> dict[tuple[int, str], dict[str, int]]:
    """Per (account id, usage type) for periods start <= period < end: the ledger quantity, the
    revision deltas by outbox state (sent, pending, failed, too_late) and `last_sent_at`."""
    totals: dict[tuple[int, str], dict[str, int]] = {}
    ledger = (
        UsageRecord.objects.filter(account_id__in=account_ids, period__gte=start, period__lt=end)
        .values("account_id", "usage_type")
        .annotate(quantity=Sum("quantity"), days=Count("id"))
    )
    for row in ledger:
        totals[(row["account_id"], row["usage_type"])] = {
            "ledger": row["quantity"] or 0,
            "days": row["days"],
        }
    by_state = (
        UsageRevision.objects.filter(
            record__account_id__in=account_ids,
            record__period__gte=start,
            record__period__lt=end,
        )
        .values("record__account_id", "record__usage_type")
        .annotate(
            last_sent_at=Max("sent_at"),
            **{state: Sum("delta", filter=Q(state=state)) for state in UsageRevision.State.values},
        )
    )
    for row in by_state:
        entry = totals.setdefault(
            (row["record__account_id"], row["record__usage_type"]), {"ledger": 0, "days": 0}
        )
        for state in UsageRevision.State.values:
            entry[state] = row[state] or 0
        entry["last_sent_at"] = row["last_sent_at"]
    for entry in totals.values():
        for state in UsageRevision.State.values:
            entry.setdefault(state, 0)
    return totals
