"""The one writer of audit entries (append-only rows: who, when, before and after)."""

from typing import Any

from django.utils import timezone

from .checklist_models import AuditEntry
from .models import Cohort


def audit_record(
    *,
    cohort: Cohort,
    action: str,
    by,
    subject: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    message: str = "",
) -> AuditEntry:
    return AuditEntry.objects.create(
        cohort=cohort,
        action=action,
        subject=subject[:100],
        before=before or {},
        after=after or {},
        message=message,
        by=by if by is not None and by.pk else None,
        by_name=by.get_username() if by is not None and by.pk else "",
        at=timezone.now(),
    )
