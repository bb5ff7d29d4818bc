"""Writes for invoice delivery. Every step is idempotent and recorded on the timeline.

The pipeline for one delivery: pending -> rendered -> stored -> sending -> sent, then tracking
moves it to delivered / bounced / complained. A worker holds a short lease on the delivery while
it works (no row lock is held across network calls); a crashed worker's lease runs out and the
sweeper resumes the delivery from its last committed state.
"""

import hashlib
import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing_project.alerts import alert_raise
from billing_project.datapoints import datapoint_record
from billing_project.db_recovery import when_database_answers
from metering.models import BillingAccount

from .models import DeliveryEvent, EmailAttempt, InvoiceDelivery, inv_uuid_for
from .ownership import invoice_not_ours_reason

logger = logging.getLogger("billing.invoices")

State = InvoiceDelivery.State
LEASE_SECONDS = 300
FINALIZED_STATUSES = ("open", "paid", "uncollectible", "void")


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def _day(value: int | None) -> date | None:
    return _ts(value).date() if value else None


def delivery_event_add(
    *,
    delivery: InvoiceDelivery,
    step: str,
    message: str = "",
    state_from: str = "",
    data: dict | None = None,
    by=None,
) -> DeliveryEvent:
    return DeliveryEvent.objects.create(
        delivery=delivery,
        at=timezone.now(),
        step=step,
        state_from=state_from,
        state_to=delivery.state if state_from else "",
        message=message,
        data=data or {},
        by=by,
    )


def _snapshot(delivery: InvoiceDelivery, invoice: dict[str, Any]) -> list[str]:
    """Copy what the operator sees from Stripe's invoice; returns the changed field names."""
    values = {
        "number": invoice.get("number") or "",
        "currency": invoice.get("currency") or "",
        "total_minor": int(invoice.get("total") or 0),
        "amount_due_minor": int(invoice.get("amount_due") or 0),
        "amount_paid_minor": int(invoice.get("amount_paid") or 0),
        "due_date": _day(invoice.get("due_date")),
        "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
        "collection_method": invoice.get("collection_method") or "",
        "billing_reason": invoice.get("billing_reason") or "",
        "stripe_customer_id": invoice.get("customer") or "",
        "finalized_at": _ts((invoice.get("status_transitions") or {}).get("finalized_at")),
    }
    changed = [name for name, value in values.items() if getattr(delivery, name) != value]
    for name in changed:
        setattr(delivery, name, values[name])
    return changed


PAYMENT_STATUS_BY_EVENT = {"invoice.paid": "paid", "invoice.payment_failed": "payment_failed"}
# Payment states only move forward: events arrive in any order (Stripe does not order them)
# and each carries the invoice as it was when the event was made, so an older `open` must not
# undo a newer `paid`. A paid invoice stays paid.
PAYMENT_RANK = {"open": 0, "payment_failed": 1, "uncollectible": 2, "void": 3, "paid": 3}


def _payment_status_moves(current: str, new: str) -> bool:
    if not new or new == current or current == "paid":
        return False
    return PAYMENT_RANK.get(new, -1) >= PAYMENT_RANK.get(current, -1)


def delivery_record(
    *, invoice: dict[str, Any], event_type: str
) -> tuple[InvoiceDelivery | None, bool]:
    """Record a finalized invoice's delivery (one per Stripe invoice) from a webhook.

    Returns (delivery, needs_work). Drafts are ignored (None). Any number of events for the same
    invoice, in any order and concurrently, leave one delivery; work is needed only while the
    delivery is ours and not yet sent.
    """
    if invoice.get("status") not in FINALIZED_STATUSES:
        return None, False
    account = BillingAccount.objects.filter(stripe_customer_id=invoice.get("customer")).first()
    with transaction.atomic():
        delivery = _get_or_create_locked(invoice["id"])
        created = delivery.state == State.PENDING and not delivery.events.exists()
        changed = _snapshot(delivery, invoice)
        status = PAYMENT_STATUS_BY_EVENT.get(event_type, invoice.get("status") or "")
        if _payment_status_moves(delivery.payment_status, status):
            delivery.payment_status = status
            changed.append("payment_status")
        if created:
            delivery.account = account
        delivery.save()
        if created:
            delivery_event_add(
                delivery=delivery,
                step="recorded",
                state_from=State.PENDING,
                message=f"from {event_type}",
                data={"event_type": event_type},
            )
        elif changed:
            delivery_event_add(
                delivery=delivery,
                step="stripe_update",
                message=f"{event_type}: {', '.join(sorted(changed))}",
                data={"event_type": event_type},
            )
    needs_work = delivery.state in (State.PENDING, State.RENDERED, State.STORED, State.SENDING)
    return delivery, needs_work


def _get_or_create_locked(stripe_invoice_id: str) -> InvoiceDelivery:
    delivery = (
        InvoiceDelivery.objects.select_for_update()
        .filter(stripe_invoice_id=stripe_invoice_id)
        .first()
    )
    if delivery is not None:
        return delivery
    try:
        with transaction.atomic():
            return InvoiceDelivery.objects.create(
                stripe_invoice_id=stripe_invoice_id, inv_uuid=inv_uuid_for(stripe_invoice_id)
            )
    except IntegrityError:
        return InvoiceDelivery.objects.select_for_update().get(stripe_invoice_id=stripe_invoice_id)


def delivery_lease_take(*, delivery_id: int) -> uuid.UUID | None:
    """Hold the delivery for this worker (None if another worker holds it)."""
    now = timezone.now()
    token = uuid.uuid4()
    taken = (
        InvoiceDelivery.objects.filter(pk=delivery_id)
        .exclude(lease_until__gt=now)
        .update(lease_token=token, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    return token if taken else None


def delivery_lease_release(*, delivery_id: int, token: uuid.UUID) -> None:
    InvoiceDelivery.objects.filter(pk=delivery_id, lease_token=token).update(
        lease_token=None, lease_until=None
    )


def _transition(
    delivery: InvoiceDelivery, state: str, step: str, message: str = "", **fields
) -> None:
    """Move to `state` (with extra fields) and append the timeline row, in one transaction."""
    with transaction.atomic():
        previous = delivery.state
        delivery.state = state
        for name, value in fields.items():
            setattr(delivery, name, value)
        delivery.save(update_fields=["state", "updated_at", *fields])
        delivery_event_add(delivery=delivery, step=step, state_from=previous, message=message)


def pdf_key_for(delivery: InvoiceDelivery, version: int = 1) -> str:
    acct = delivery.account.acct_id if delivery.account_id else "unknown"
    suffix = "" if version == 1 else f".v{version}"
    return f"{acct}/{delivery.inv_uuid}{suffix}.pdf"


def delivery_store_pdf(*, delivery: InvoiceDelivery, content: bytes) -> str:
    """Store the PDF without ever overwriting one: same bytes reuse the key, new bytes get .vN."""
    storage = storages["default"]
    digest = hashlib.sha256(content).hexdigest()
    version = 1
    while True:
        key = pdf_key_for(delivery, version)
        if not storage.exists(key):
            saved = storage.save(key, ContentFile(content))
            if saved != key:
                raise RuntimeError(f"storage renamed {key} to {saved}: refusing to lose track")
            return key
        with storage.open(key, "rb") as existing:
            if hashlib.sha256(existing.read()).hexdigest() == digest:
                return key
        version += 1


WORK_STATES = (State.PENDING, State.RENDERED, State.STORED, State.SENDING)


class RetryLater(Exception):
    """The step failed for a reason that may pass (a service down); the sweeper retries.

    `retry_at`, when given, is when the retry can first decide anything (instead of the
    backoff schedule): e.g. once Mailgun has had time to list an accepted message.
    """

    def __init__(self, message: str, *, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class NeedsAttention(Exception):
    """The step cannot succeed without a person (bad data); the delivery is marked failed."""


def _backoff_seconds(attempt: int) -> int:
    steps = settings.BILLING_DELIVERY_BACKOFF_SECONDS
    return steps[min(attempt, len(steps)) - 1]


def delivery_process(*, delivery_id: int) -> InvoiceDelivery:
    """Take a delivery as far as it can go now. Idempotent; concurrent calls do the work once.

    When the database goes away mid-way (a restart), the lease is given up and the delivery
    goes on from its last committed step as soon as the database answers again, rather than
    when the lease runs out.
    """
    return when_database_answers(
        lambda: _delivery_process(delivery_id=delivery_id), what=f"delivery {delivery_id}"
    )


def _delivery_process(*, delivery_id: int) -> InvoiceDelivery:
    from .gateways import stripe_invoice_fetch

    token = delivery_lease_take(delivery_id=delivery_id)
    delivery = InvoiceDelivery.objects.select_related("account").get(pk=delivery_id)
    if token is None or delivery.state not in WORK_STATES:
        if token is not None:
            delivery_lease_release(delivery_id=delivery_id, token=token)
        return delivery
    try:
        with transaction.atomic():
            InvoiceDelivery.objects.filter(pk=delivery_id).update(
                work_attempts=F("work_attempts") + 1
            )
        delivery.refresh_from_db()
        try:
            invoice, lines = stripe_invoice_fetch(delivery.stripe_invoice_id)
        except Exception as exc:  # stripe errors and network errors alike are retried
            raise RetryLater(f"Stripe: {exc}") from exc
        if delivery.state == State.PENDING:
            reason = invoice_not_ours_reason(invoice=invoice, lines=lines, account=delivery.account)
            if reason:
                _transition(delivery, State.NOT_OURS, "not_ours", reason, not_ours_reason=reason)
                return delivery
        _snapshot(delivery, invoice)
        delivery.save()
        _run_steps(delivery, invoice, lines)
        InvoiceDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=None, last_error="")
    except RetryLater as exc:
        _schedule_retry(delivery, str(exc), retry_at=exc.retry_at)
    except NeedsAttention as exc:
        _fail(delivery, str(exc))
    finally:
        when_database_answers(
            lambda: delivery_lease_release(delivery_id=delivery_id, token=token),
            what=f"release of delivery {delivery_id}",
        )
    delivery.refresh_from_db()
    return delivery


def _run_steps(
    delivery: InvoiceDelivery, invoice: dict[str, Any], lines: list[dict[str, Any]]
) -> None:
    from .documents import document_equation_errors

    document = _document_from(delivery, invoice, lines)
    errors = document_equation_errors(document)
    if errors:
        raise NeedsAttention("invoice totals do not add up: " + "; ".join(errors))
    content = None
    if delivery.state in (State.PENDING, State.RENDERED) or not delivery.pdf_key:
        content = _render(delivery, document)
    if delivery.state in (State.STORED, State.SENDING):
        if content is None:
            content = _stored_pdf(delivery)
        _send(delivery, document, content, request_key=_open_request_key(delivery))


def _open_request_key(delivery: InvoiceDelivery) -> str:
    """The email request still to finish: an interrupted operator re-send, else the first."""
    unfinished = (
        delivery.email_attempt_rows.exclude(status=EmailAttempt.Status.SENT)
        .order_by("-created_at", "-id")
        .first()
    )
    return unfinished.request_key if unfinished else "initial"


def _render(delivery: InvoiceDelivery, document) -> bytes:
    from .pdf import PdfRenderError, invoice_pdf_render

    account_id = delivery.account.acct_id if delivery.account_id else None
    try:
        rendered = invoice_pdf_render(document=document)
    except PdfRenderError as exc:
        datapoint_record(
            name="pdf_render_failed",
            dimensions={"account_id": account_id, "inv_uuid": delivery.inv_uuid, "error": str(exc)},
        )
        raise NeedsAttention(f"PDF render failed: {exc}") from exc
    _transition(
        delivery,
        State.RENDERED,
        "pdf_rendered",
        f"{len(rendered.content):,} bytes in {rendered.render_ms} ms",
        pdf_sha256=rendered.sha256,
        pdf_bytes=len(rendered.content),
        pdf_render_ms=rendered.render_ms,
        pdf_template_version=rendered.template_version,
    )
    datapoint_record(
        name="pdf_rendered",
        dimensions={
            "account_id": account_id,
            "inv_uuid": delivery.inv_uuid,
            "duration_ms": rendered.render_ms,
        },
    )
    try:
        key = delivery_store_pdf(delivery=delivery, content=rendered.content)
    except Exception as exc:  # storage client errors vary by backend
        raise RetryLater(f"storage: {exc}") from exc
    _transition(delivery, State.STORED, "pdf_stored", key, pdf_key=key)
    return rendered.content


def _stored_pdf(delivery: InvoiceDelivery) -> bytes:
    try:
        with storages["default"].open(delivery.pdf_key, "rb") as stored:
            return stored.read()
    except Exception as exc:  # storage client errors vary by backend
        raise RetryLater(f"storage: {exc}") from exc


def _recipient(delivery: InvoiceDelivery, document) -> str:
    email = (
        delivery.account.billing_email if delivery.account_id else ""
    ) or document.customer_email
    if not email:
        raise NeedsAttention("no billing email for this account or Stripe customer")
    return email


def _send(
    delivery: InvoiceDelivery, document, content: bytes, *, request_key: str, by=None
) -> EmailAttempt:
    """Send the email for one request at most once, surviving a crash between send and commit."""
    from anymail.exceptions import AnymailError

    from .emails import invoice_email_build, invoice_email_send, invoice_email_template
    from .mailgun import (
        EVENTS_SETTLE_SECONDS,
        MailgunUnavailable,
        mailgun_message_for_attempt,
        mailgun_send_refused,
    )

    template = delivery.email_template or invoice_email_template(delivery.collection_method)
    attempt, _ = EmailAttempt.objects.get_or_create(
        delivery=delivery,
        request_key=request_key,
        defaults={
            "template": template,
            "recipient": _recipient(delivery, document),
            "pdf_key": delivery.pdf_key,
            "requested_by": by,
        },
    )
    if attempt.status == EmailAttempt.Status.SENT:
        return attempt
    if attempt.status == EmailAttempt.Status.PARKED:
        raise NeedsAttention("the outcome of an earlier send is unknown; an operator decides")
    if attempt.status == EmailAttempt.Status.SENDING and attempt.tries > 0:
        # The last try ended without an answer (crash, timeout): ask Mailgun before sending.
        since = attempt.last_try_at.timestamp() if attempt.last_try_at else None
        try:
            found = mailgun_message_for_attempt(
                str(attempt.attempt_id), recipient=attempt.recipient, since=since
            )
        except MailgunUnavailable as exc:
            if delivery.work_attempts >= settings.BILLING_DELIVERY_MAX_ATTEMPTS:
                # Mailgun still cannot say: an operator decides whether to send again.
                EmailAttempt.objects.filter(pk=attempt.pk).update(
                    status=EmailAttempt.Status.PARKED, error=str(exc)[:1000]
                )
                raise NeedsAttention(
                    f"the outcome of send attempt {attempt.attempt_id} is unknown and Mailgun "
                    f"cannot say ({exc}); an operator decides whether to send again"
                ) from exc
            raise RetryLater(f"Mailgun events unavailable: {exc}") from exc
        if found:
            _sent(delivery, attempt, found, recovered=True)
            return attempt
        settles_at = (attempt.last_try_at or timezone.now()) + timedelta(
            seconds=EVENTS_SETTLE_SECONDS
        )
        if timezone.now() < settles_at:
            # Mailgun lists an accepted message only after a delay: absence proves nothing yet.
            raise RetryLater(
                "waiting for Mailgun's event log before deciding to resend", retry_at=settles_at
            )
    with transaction.atomic():
        attempt.tries += 1
        attempt.status = EmailAttempt.Status.SENDING
        attempt.last_try_at = timezone.now()
        attempt.save(update_fields=["tries", "status", "last_try_at"])
        InvoiceDelivery.objects.filter(pk=delivery.pk).update(
            email_attempts=F("email_attempts") + 1, email_template=template
        )
        delivery.email_template = template
        if delivery.state != State.SENDING:
            _transition(delivery, State.SENDING, "email_sending", f"attempt {attempt.attempt_id}")
    message = invoice_email_build(
        document=document,
        pdf_content=content,
        to=[attempt.recipient],
        template=attempt.template,
        delivery_id=delivery.pk,
        attempt_id=str(attempt.attempt_id),
    )
    account_id = delivery.account.acct_id if delivery.account_id else None
    try:
        message_id = invoice_email_send(message)
    except AnymailError as exc:
        refused = mailgun_send_refused(exc)
        datapoint_record(
            name="email_failed",
            dimensions={
                "account_id": account_id,
                "template": attempt.template,
                "error": str(exc)[:300],
                "outcome": "not_sent" if refused else "unknown",
            },
        )
        if refused:
            # Mailgun refused the request: nothing was queued, the same attempt may go again.
            with transaction.atomic():
                EmailAttempt.objects.filter(pk=attempt.pk).update(
                    status=EmailAttempt.Status.FAILED, error=str(exc)[:1000]
                )
                _transition(delivery, State.STORED, "email_failed", str(exc)[:500])
            raise RetryLater(f"Mailgun refused the send: {exc}") from exc
        # The request may have reached Mailgun: the attempt stays `sending` and the next run
        # asks Mailgun's events before anything is sent again.
        with transaction.atomic():
            EmailAttempt.objects.filter(pk=attempt.pk).update(error=str(exc)[:1000])
            delivery_event_add(
                delivery=delivery,
                step="email_outcome_unknown",
                message=f"{str(exc)[:400]} (Mailgun is asked before any new send)",
            )
        raise RetryLater(f"Mailgun's answer is unclear, asking before any new send: {exc}") from exc
    _sent(delivery, attempt, message_id)
    datapoint_record(
        name="email_sent",
        dimensions={
            "account_id": account_id,
            "template": attempt.template,
            "mailgun_id": message_id,
        },
    )
    return attempt


def _sent(
    delivery: InvoiceDelivery, attempt: EmailAttempt, message_id: str, recovered: bool = False
) -> None:
    with transaction.atomic():
        attempt.status = EmailAttempt.Status.SENT
        attempt.mailgun_message_id = message_id
        attempt.sent_at = timezone.now()
        attempt.save(update_fields=["status", "mailgun_message_id", "sent_at"])
        note = "found at Mailgun after an interrupted send" if recovered else "accepted by Mailgun"
        if delivery.state in (*WORK_STATES, State.FAILED):
            _transition(
                delivery,
                State.SENT,
                "email_sent",
                f"{note}: {message_id}",
                mailgun_message_id=message_id,
            )
        else:
            delivery_event_add(
                delivery=delivery, step="email_sent", message=f"{note}: {message_id}"
            )
    if recovered:
        from .tracking import tracking_events_relink

        tracking_events_relink(attempt=attempt)


def _schedule_retry(
    delivery: InvoiceDelivery, error: str, *, retry_at: datetime | None = None
) -> None:
    delivery.refresh_from_db()
    if delivery.work_attempts >= settings.BILLING_DELIVERY_MAX_ATTEMPTS:
        _fail(delivery, f"gave up after {delivery.work_attempts} attempts: {error}")
        return
    wait = _backoff_seconds(delivery.work_attempts)
    if retry_at is not None:
        wait = max(1, int((retry_at - timezone.now()).total_seconds()) + 1)
    with transaction.atomic():
        InvoiceDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() + timedelta(seconds=wait), last_error=error[:2000]
        )
        delivery_event_add(
            delivery=delivery, step="retry_scheduled", message=f"in {wait} s: {error}"
        )
    logger.warning("delivery retry", extra={"delivery_id": delivery.pk, "error": error})


def _fail(delivery: InvoiceDelivery, error: str) -> None:
    delivery.refresh_from_db()
    with transaction.atomic():
        _transition(
            delivery, State.FAILED, "failed", error, last_error=error[:2000], next_attempt_at=None
        )
        alert_raise(
            route="billing",
            title=f"Invoice delivery failed: {delivery.number or delivery.stripe_invoice_id}",
            body=error,
            dimensions={
                "account_id": delivery.account.acct_id if delivery.account_id else None,
                "stripe_invoice_id": delivery.stripe_invoice_id,
            },
        )


def _document(delivery: InvoiceDelivery):
    from .gateways import stripe_invoice_fetch

    try:
        invoice, lines = stripe_invoice_fetch(delivery.stripe_invoice_id)
    except Exception as exc:  # stripe errors and network errors alike
        raise RetryLater(f"Stripe: {exc}") from exc
    return _document_from(delivery, invoice, lines)


def _document_from(delivery: InvoiceDelivery, invoice: dict[str, Any], lines: list[dict]):
    """The PDF's document; line kinds come from the catalog we created in Stripe."""
    from metering.selectors import catalog_kinds

    from .documents import invoice_document_build

    account = delivery.account
    return invoice_document_build(
        invoice=invoice,
        lines=lines,
        acct_id=account.acct_id if account else None,
        customer_address=account.address if account else "",
        kinds=catalog_kinds(),
    )


OPERATOR_STATES = (State.SENT, State.DELIVERED, State.BOUNCED, State.COMPLAINED, State.FAILED)


def delivery_resend(*, delivery_id: int, request_key: str, by=None) -> EmailAttempt:
    """An operator's re-send: one more email, same template, at most once per request key."""
    token = delivery_lease_take(delivery_id=delivery_id)
    if token is None:
        raise NeedsAttention("the delivery is being worked on right now; try again in a minute")
    try:
        delivery = InvoiceDelivery.objects.select_related("account").get(pk=delivery_id)
        if delivery.state not in OPERATOR_STATES or not delivery.pdf_key:
            raise NeedsAttention(
                f"only a delivery that was sent can be re-sent (this one is {delivery.state})"
            )
        if _unknown_attempts_settle(delivery) is not None:
            raise NeedsAttention(
                "Mailgun had accepted the earlier send after all; it now counts as sent, "
                "so nothing more was sent (re-send again if one more email is wanted)"
            )
        document = _document(delivery)
        content = _stored_pdf(delivery)
        delivery_event_add(delivery=delivery, step="resend_requested", message=request_key, by=by)
        return _send(delivery, document, content, request_key=request_key, by=by)
    finally:
        delivery_lease_release(delivery_id=delivery_id, token=token)


class OutcomeUnknown(NeedsAttention):
    """Mailgun cannot say whether an earlier send went out: only "send anyway" sends now."""


UNKNOWN_STATUSES = (EmailAttempt.Status.SENDING, EmailAttempt.Status.PARKED)


def _unknown_attempts_settle(delivery: InvoiceDelivery) -> EmailAttempt | None:
    """Ask Mailgun about every attempt whose outcome is unknown, before any new send.

    An attempt Mailgun lists as accepted counts as sent (returned; the delivery is `sent`);
    one Mailgun does not list once its event log has settled is marked not sent. Raises
    `OutcomeUnknown` when Mailgun cannot say: nothing may be sent but by "send anyway".
    """
    from .mailgun import EVENTS_SETTLE_SECONDS, MailgunUnavailable, mailgun_message_for_attempt

    unknown = delivery.email_attempt_rows.filter(status__in=UNKNOWN_STATUSES).order_by("id")
    for attempt in unknown:
        if attempt.tries == 0:
            continue  # never posted: nothing can have reached Mailgun
        since = attempt.last_try_at.timestamp() if attempt.last_try_at else None
        try:
            found = mailgun_message_for_attempt(
                str(attempt.attempt_id), recipient=attempt.recipient, since=since
            )
        except MailgunUnavailable as exc:
            raise OutcomeUnknown(
                f"Mailgun cannot say whether send attempt {attempt.attempt_id} went out "
                f'({exc}); nothing was sent. Try again later, or choose "Send anyway" to '
                "send regardless (the customer may get the email twice)"
            ) from exc
        if found:
            _sent(delivery, attempt, found, recovered=True)
            return attempt
        settles_at = (attempt.last_try_at or timezone.now()) + timedelta(
            seconds=EVENTS_SETTLE_SECONDS
        )
        if timezone.now() < settles_at:
            raise OutcomeUnknown(
                f"Mailgun does not list send attempt {attempt.attempt_id} yet, and cannot be "
                f"sure before {settles_at:%Y-%m-%d %H:%M} UTC; nothing was sent. Try again "
                'then, or choose "Send anyway" to send regardless'
            )
        with transaction.atomic():
            EmailAttempt.objects.filter(pk=attempt.pk).update(status=EmailAttempt.Status.FAILED)
            delivery_event_add(
                delivery=delivery,
                step="email_not_found",
                message=f"attempt {attempt.attempt_id}: Mailgun never accepted it",
            )
    return None


def delivery_retry(*, delivery_id: int, by=None) -> InvoiceDelivery:
    """An operator's retry of a failed delivery: fresh attempt budget, resume where it stopped.

    An earlier send whose outcome is unknown is asked of Mailgun first: found, the delivery is
    sent and nothing goes out again; Mailgun unable to say refuses the retry (`OutcomeUnknown`).
    """
    _settle_before_operator_send(delivery_id, by=by)
    return _delivery_resume(delivery_id, by=by, step="retry_requested", message="by operator")


def delivery_send_anyway(*, delivery_id: int, by=None) -> InvoiceDelivery:
    """An operator's confirmed choice to send although an earlier send's outcome is unknown."""
    with transaction.atomic():
        delivery = InvoiceDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.state != State.FAILED:
            raise NeedsAttention(
                f"only a failed delivery can be sent anyway (this one is {delivery.state})"
            )
        unknown = list(delivery.email_attempt_rows.filter(status__in=UNKNOWN_STATUSES))
        if not unknown:
            raise NeedsAttention("no earlier send has an unknown outcome: use Retry instead")
        EmailAttempt.objects.filter(pk__in=[a.pk for a in unknown]).update(
            status=EmailAttempt.Status.FAILED
        )
        delivery_event_add(
            delivery=delivery,
            step="send_anyway_confirmed",
            message="outcome unknown for "
            + ", ".join(str(a.attempt_id) for a in unknown)
            + "; the operator chose to send again",
            by=by,
        )
    return _delivery_resume(delivery_id, by=by, step="retry_requested", message="send anyway")


def _settle_before_operator_send(delivery_id: int, *, by=None) -> None:
    token = delivery_lease_take(delivery_id=delivery_id)
    if token is None:
        raise NeedsAttention("the delivery is being worked on right now; try again in a minute")
    try:
        delivery = InvoiceDelivery.objects.select_related("account").get(pk=delivery_id)
        if delivery.state != State.FAILED:
            raise NeedsAttention(
                f"only a failed delivery can be retried (this one is {delivery.state})"
            )
        found = _unknown_attempts_settle(delivery)
    finally:
        delivery_lease_release(delivery_id=delivery_id, token=token)
    if found is not None:
        raise NeedsAttention(
            f"Mailgun had accepted send attempt {found.attempt_id} "
            f"({found.mailgun_message_id}): the delivery is sent, nothing was sent again"
        )


def _delivery_resume(delivery_id: int, *, by, step: str, message: str) -> InvoiceDelivery:
    with transaction.atomic():
        delivery = InvoiceDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.state != State.FAILED:
            raise NeedsAttention(
                f"only a failed delivery can be retried (this one is {delivery.state})"
            )
        resume = State.STORED if delivery.pdf_key else State.PENDING
        previous = delivery.state
        delivery.state = resume
        delivery.work_attempts = 0
        delivery.next_attempt_at = None
        delivery.save(update_fields=["state", "work_attempts", "next_attempt_at", "updated_at"])
        delivery_event_add(
            delivery=delivery, step=step, state_from=previous, message=message, by=by
        )
        transaction.on_commit(lambda: delivery_enqueue(delivery.pk))
    return delivery


def delivery_rerender(*, delivery_id: int, by=None) -> InvoiceDelivery:
    """Render the PDF again and store it; different bytes go to a new `.vN` key, nothing is sent."""
    from .pdf import PdfRenderError, invoice_pdf_render

    delivery = InvoiceDelivery.objects.select_related("account").get(pk=delivery_id)
    if delivery.state in (State.PENDING, State.NOT_OURS):
        raise NeedsAttention(f"nothing to re-render for a delivery in state {delivery.state}")
    try:
        rendered = invoice_pdf_render(document=_document(delivery))
    except PdfRenderError as exc:
        raise NeedsAttention(f"PDF render failed: {exc}") from exc
    try:
        key = delivery_store_pdf(delivery=delivery, content=rendered.content)
    except Exception as exc:  # storage client errors vary by backend
        raise RetryLater(f"storage: {exc}") from exc
    with transaction.atomic():
        InvoiceDelivery.objects.filter(pk=delivery.pk).update(
            pdf_key=key,
            pdf_sha256=rendered.sha256,
            pdf_bytes=len(rendered.content),
            pdf_render_ms=rendered.render_ms,
            pdf_template_version=rendered.template_version,
        )
        delivery_event_add(delivery=delivery, step="pdf_rerendered", message=key, by=by)
    delivery.refresh_from_db()
    return delivery


def delivery_start(delivery_id: int) -> None:
    """Run a just-recorded delivery at once, in the task that processed its webhook.

    Receivers run in the worker (the webhook request only stores the event), so the work starts
    without a second trip through the queue. Nothing propagates to the webhook: a failure is
    the delivery's own (its retry schedule, or the sweeper for one left mid-way).
    """
    try:
        delivery_process(delivery_id=delivery_id)
    except Exception:
        logger.exception("delivery %s stopped; the sweeper resumes it", delivery_id)


def delivery_enqueue(delivery_id: int) -> None:
    """Queue the pipeline for a delivery (call after commit; the task is idempotent)."""
    from django_q.tasks import async_task

    async_task(
        "invoices.tasks.delivery_process_task", delivery_id, task_name=f"delivery-{delivery_id}"
    )
