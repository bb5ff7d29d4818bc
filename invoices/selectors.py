"""Reads for invoice delivery: the operator's lists, the month's funnel and the PDF link."""

import inspect
from collections.abc import Iterable
from datetime import date, datetime

from django.core.files.storage import storages
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone

from .models import DeliveryEvent, EmailAttempt, InvoiceDelivery

PDF_LINK_SECONDS = 300


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[first instant of the month, first instant of the next) in the current time zone."""
    tz = timezone.get_current_timezone()
    start = datetime(month.year, month.month, 1, tzinfo=tz)
    following = (
        datetime(month.year + 1, 1, 1, tzinfo=tz)
        if month.month == 12
        else datetime(month.year, month.month + 1, 1, tzinfo=tz)
    )
    return start, following


def delivery_list(
    *, queryset: QuerySet[InvoiceDelivery] | None = None
) -> QuerySet[InvoiceDelivery]:
    """Deliveries with their account joined and the latest timeline step annotated
    (`last_event_step`, `last_event_at`), so a page of rows is one query."""
    if queryset is None:
        queryset = InvoiceDelivery.objects.all()
    latest = DeliveryEvent.objects.filter(delivery=OuterRef("pk")).order_by("-at", "-id")
    return queryset.select_related("account").annotate(
        last_event_step=Subquery(latest.values("step")[:1]),
        last_event_at=Subquery(latest.values("at")[:1]),
    )


def delivery_resend_list(*, delivery_ids: Iterable[int]) -> list[InvoiceDelivery]:
    """The deliveries an operator is about to re-send, with the recipient of their latest
    email (`last_recipient`) for the confirmation page."""
    last_recipient = (
        EmailAttempt.objects.filter(delivery=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("recipient")[:1]
    )
    return list(
        InvoiceDelivery.objects.filter(pk__in=list(delivery_ids))
        .select_related("account")
        .annotate(last_recipient=Subquery(last_recipient))
        .order_by("number", "pk")
    )


def delivery_funnel(*, month: date) -> list[tuple[str, int]]:
    """How many deliveries finalized in `month` are in each state, every state listed in
    pipeline order (pending ... delivered, then bounced, complained, failed, not_ours)."""
    start, end = month_bounds(month)
    counts = dict(
        InvoiceDelivery.objects.filter(finalized_at__gte=start, finalized_at__lt=end)
        .order_by()
        .values_list("state")
        .annotate(count=Count("pk"))
    )
    return [(state, counts.get(state, 0)) for state in InvoiceDelivery.State.values]


def delivery_pdf_url(*, delivery: InvoiceDelivery) -> str:
    """A link to the stored PDF: presigned for PDF_LINK_SECONDS on object storage (the bucket
    is private), the storage's plain URL on a backend without expiring links."""
    storage = storages["default"]
    if "expire" in inspect.signature(storage.url).parameters:
        return storage.url(delivery.pdf_key, expire=PDF_LINK_SECONDS)
    return storage.url(delivery.pdf_key)
