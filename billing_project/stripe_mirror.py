"""dj-stripe's mirror of Stripe objects, updated as its own step after our handling of an event.

The intake (`billing_project.webhook_intake`) records dj-stripe's `Event` row and runs our
handlers without dj-stripe's processing; this module then makes dj-stripe's copy of the
event's object from the event itself (Stripe signed it, at the pinned API version), so the
object is not fetched a second time; objects it refers to that dj-stripe does not hold yet
(a new customer, a subscription) are fetched by dj-stripe once. Deletions and object types
without a copy here go through dj-stripe's own handlers. Nothing reads these copies for
billing (no delivery, check or report): an older event arriving after a newer one may leave
the copy behind until the next event. Nothing here holds up a delivery: a mirror that fails
is alerted once per outage, retried with backoff
(`MIRROR_BACKOFF_SECONDS`) and, after the last attempt, left `failed` for an operator.
Shapes dj-stripe 2.11 cannot parse are normalised in `billing_project.djstripe_compat`.
"""

import logging
from datetime import datetime, timedelta
from traceback import format_exc

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task
from djstripe.models import (
    Coupon,
    Customer,
    Event,
    Invoice,
    InvoiceItem,
    Price,
    Product,
    Subscription,
)

from . import stripe_api
from .alerts import alert_raise
from .djstripe_compat import payload_for_djstripe
from .models import StripeMirror

logger = logging.getLogger("billing.stripe_mirror")

MIRROR_TASK = "billing_project.tasks.stripe_mirror_update_task"
MIRROR_BACKOFF_SECONDS = [60, 300, 900, 3600, 4 * 3600, 12 * 3600]
MIRROR_MAX_ATTEMPTS = len(MIRROR_BACKOFF_SECONDS) + 1
RESUME_BATCH = 500
State = StripeMirror.State
# Object types copied straight from the event's payload (Stripe's `object` -> dj-stripe model).
COPIED_FROM_EVENT = {
    "coupon": Coupon,
    "customer": Customer,
    "invoice": Invoice,
    "invoiceitem": InvoiceItem,
    "price": Price,
    "product": Product,
    "subscription": Subscription,
}


def stripe_mirror_enqueue(event_id: str) -> None:
    async_task(MIRROR_TASK, event_id, task_name=f"stripe-mirror-{event_id}")


def stripe_mirror_record(*, event_id: str, event_type: str) -> None:
    """Note that dj-stripe's copy of this event's objects is due (inside the intake's
    transaction); its task starts after commit."""
    try:
        with transaction.atomic():
            StripeMirror.objects.create(
                event_id=event_id, event_type=event_type, next_attempt_at=timezone.now()
            )
    except IntegrityError:
        return  # already noted by an earlier delivery of the same event
    transaction.on_commit(lambda: stripe_mirror_enqueue(event_id))


def stripe_mirror_update(*, event_id: str, now: datetime | None = None) -> str:
    """Run dj-stripe's handlers for one event, once. Returns the mirror's state.

    Runs outside any transaction of ours (dj-stripe fetches from Stripe as it goes)."""
    now = now or timezone.now()
    claimed = StripeMirror.objects.filter(
        event_id=event_id, state=State.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=MIRROR_BACKOFF_SECONDS[0]))
    mirror = StripeMirror.objects.filter(event_id=event_id).first()
    if mirror is None or not claimed:
        return mirror.state if mirror else "missing"
    event = Event.objects.filter(id=event_id).first()
    try:
        if event is None:
            raise LookupError(f"dj-stripe holds no Event {event_id}")
        _copy(event)
    except Exception as exc:
        return _failed(mirror, exc, now)
    StripeMirror.objects.filter(pk=mirror.pk).update(
        state=State.DONE, attempts=mirror.attempts + 1, next_attempt_at=None, last_error=""
    )
    return State.DONE


def _copy(event: Event) -> None:
    obj = (event.data or {}).get("object") or {}
    model = COPIED_FROM_EVENT.get(obj.get("object") or "")
    if model is None or event.type.endswith(".deleted"):
        event.invoke_webhook_handlers()  # dj-stripe's own: a re-fetch, or the local delete
        return
    # As stripe-python would hand it over (lists as ListObjects): dj-stripe reads it that way.
    data = stripe_api.client().deserialize(payload_for_djstripe(obj), api_mode="V1")
    model.sync_from_stripe_data(data, api_key=event.default_api_key)


def _failed(mirror: StripeMirror, exc: Exception, now: datetime) -> str:
    attempts = mirror.attempts + 1
    error = f"{type(exc).__name__}: {exc}"[:2000]
    logger.warning("dj-stripe mirror of %s failed: %s", mirror.event_id, error)
    outage_known = (
        StripeMirror.objects.filter(state=State.PENDING, attempts__gt=0)
        .exclude(pk=mirror.pk)
        .exists()
    )
    if attempts >= MIRROR_MAX_ATTEMPTS:
        state, next_at = State.FAILED, None
    else:
        state = State.PENDING
        next_at = now + timedelta(seconds=MIRROR_BACKOFF_SECONDS[attempts - 1])
    StripeMirror.objects.filter(pk=mirror.pk).update(
        state=state, attempts=attempts, next_attempt_at=next_at, last_error=error
    )
    if (attempts == 1 and not outage_known) or state == State.FAILED:
        alert_raise(
            route="operations",
            title=(
                f"dj-stripe could not mirror {mirror.event_type} ({mirror.event_id})"
                + ("; gave up" if state == State.FAILED else "")
            ),
            body=(
                f"{error}\n\nInvoice delivery does not depend on this copy and went on. "
                + (
                    f"Retried {len(MIRROR_BACKOFF_SECONDS)} times with backoff."
                    if state == State.FAILED
                    else "It is retried with backoff."
                )
                + f"\n\n{format_exc()[-1500:]}"
            ),
            dimensions={"event_id": mirror.event_id, "attempts": attempts},
        )
    return state


def stripe_mirrors_resume(*, now: datetime | None = None) -> int:
    """Queue the mirrors whose next attempt is due (a failed one, or one whose task was lost)."""
    now = now or timezone.now()
    due = list(
        StripeMirror.objects.filter(state=State.PENDING, next_attempt_at__lte=now).values_list(
            "event_id", flat=True
        )[:RESUME_BATCH]
    )
    for event_id in due:
        stripe_mirror_enqueue(event_id)
    return len(due)


def stripe_mirror_retry(*, event_id: str) -> bool:
    """An operator's "again now" for a failed or waiting mirror (a done one is left alone)."""
    queued = StripeMirror.objects.filter(
        event_id=event_id, state__in=(State.PENDING, State.FAILED)
    ).update(state=State.PENDING, next_attempt_at=timezone.now())
    if queued:
        stripe_mirror_enqueue(event_id)
    return bool(queued)
