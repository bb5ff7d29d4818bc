"""Per-invoice delivery state: one `InvoiceDelivery` per Stripe invoice, its timeline, each email
attempt, and the Mailgun tracking events received."""

import uuid

from django.conf import settings
from django.db import models

# Fixed namespace: `inv_uuid` is uuid5(namespace, Stripe invoice id), the same on every run.
INVOICE_UUID_NAMESPACE = uuid.UUID("5b0f3a4e-9c1d-4e57-8a2b-6d3c9e1f7a10")


def inv_uuid_for(stripe_invoice_id: str) -> uuid.UUID:
    return uuid.uuid5(INVOICE_UUID_NAMESPACE, stripe_invoice_id)


class InvoiceDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RENDERED = "rendered", "PDF rendered"
        STORED = "stored", "PDF stored"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        FAILED = "failed", "Failed (needs attention)"
        NOT_OURS = "not_ours", "Not ours"

    stripe_invoice_id = models.CharField(max_length=255, unique=True)
    inv_uuid = models.UUIDField(unique=True, editable=False)
    account = models.ForeignKey(
        "metering.BillingAccount",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    number = models.CharField(max_length=64, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    total_minor = models.BigIntegerField(default=0)
    amount_due_minor = models.BigIntegerField(default=0)
    amount_paid_minor = models.BigIntegerField(default=0)
    due_date = models.DateField(null=True, blank=True)
    hosted_invoice_url = models.URLField(max_length=1000, blank=True)
    collection_method = models.CharField(max_length=32, blank=True)
    billing_reason = models.CharField(max_length=64, blank=True)
    payment_status = models.CharField(
        max_length=32, blank=True, help_text="Stripe's invoice status, or payment_failed."
    )
    finalized_at = models.DateTimeField(null=True, blank=True)

    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    not_ours_reason = models.CharField(max_length=255, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)

    pdf_key = models.CharField(max_length=512, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    pdf_bytes = models.PositiveIntegerField(null=True, blank=True)
    pdf_render_ms = models.PositiveIntegerField(null=True, blank=True)
    pdf_template_version = models.CharField(max_length=32, blank=True)

    email_template = models.CharField(max_length=64, blank=True)
    mailgun_message_id = models.CharField(max_length=255, blank=True)
    email_attempts = models.PositiveIntegerField(default=0)

    work_attempts = models.PositiveIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker holds this delivery until then (crash-safe)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "invoice deliveries"
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return self.number or self.stripe_invoice_id


class DeliveryEvent(models.Model):
    """The delivery's timeline: every step, state change, tracking event and operator action."""

    delivery = models.ForeignKey(InvoiceDelivery, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    step = models.CharField(max_length=64)
    state_from = models.CharField(max_length=16, blank=True)
    state_to = models.CharField(max_length=16, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.step} @ {self.at:%Y-%m-%d %H:%M:%S}"


class EmailAttempt(models.Model):
    """One email for one (delivery, request): the first send, or one operator re-send.

    The unique (delivery, request_key) is what makes "exactly one email per request" hold; the
    attempt id travels to Mailgun as a user-variable so a crashed send can be looked up.
    """

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        PARKED = "parked", "Parked (outcome unknown, operator decides)"

    delivery = models.ForeignKey(
        InvoiceDelivery, on_delete=models.CASCADE, related_name="email_attempt_rows"
    )
    request_key = models.CharField(max_length=64)
    attempt_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    template = models.CharField(max_length=64)
    recipient = models.CharField(max_length=254)
    pdf_key = models.CharField(max_length=512)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENDING)
    tries = models.PositiveIntegerField(default=0)
    last_try_at = models.DateTimeField(null=True, blank=True)
    mailgun_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the outcome lookup last asked Mailgun about this email (least recently asked first).
    outcome_asked_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "request_key"], name="emailattempt_one_per_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id}:{self.request_key}"


class TrackingEvent(models.Model):
    """A Mailgun event about one of our emails, kept once however it reached us.

    It comes from the tracking webhook (Mailgun redelivers; kept once per signature token) or
    from asking Mailgun's events API (`outcomes`); `mailgun_event_key` (Mailgun's event id and
    timestamp) keeps the same event once when both report it.
    """

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Tracking webhook"
        LOOKUP = "lookup", "Mailgun events lookup"

    event_id = models.CharField(max_length=255, unique=True)
    mailgun_event_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    event_type = models.CharField(max_length=32)
    message_id = models.CharField(max_length=255, blank=True, db_index=True)
    recipient = models.CharField(max_length=254, blank=True)
    delivery = models.ForeignKey(
        InvoiceDelivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="tracking"
    )
    attempt = models.ForeignKey(
        EmailAttempt, on_delete=models.SET_NULL, null=True, blank=True, related_name="tracking"
    )
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"
