"""Mailgun's tracking webhook: Anymail's view, trusting nothing it did not sign.

Before Anymail reads a post, it is refused with 400 unless it is a JSON object whose
`signature` block holds a token, a timestamp and a hex signature as Mailgun sends them (ASCII
strings; the timestamp may be an integer), signed within the last `MAX_AGE` and not more than
`MAX_FUTURE` ahead of our clock. Mailgun's signature covers the timestamp and token only, so
without the window one captured block could be replayed with any event data. Anymail then
checks the signature.

Signed event data that does not parse as a Mailgun event (no `event`, a `message` that is not
an object, a NUL character, a recipient that is not an address-sized string, …) is answered
406, which tells Mailgun not to retry, and kept as a `mailgun_webhook_refused` datapoint;
nothing reaches delivery tracking. https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
"""

import json
import logging
import math
import re
import time
from datetime import timedelta
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from django.http import HttpRequest, HttpResponse

from billing_project.datapoints import datapoint_record

logger = logging.getLogger("billing.invoices")

MAX_AGE = timedelta(minutes=15)
MAX_FUTURE = timedelta(minutes=1)  # clock skew between Mailgun and us
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
# Field limits of the stored tracking event (invoices.TrackingEvent).
MAX_RECIPIENT = 254
MAX_MESSAGE_ID = 255
MAX_EVENT = 32
MAX_DEPTH = 20
EXCERPT = 500


class MalformedEvent(ValueError):
    """Signed event data that is not a Mailgun event we can read."""


def _signature_block(request: HttpRequest) -> tuple[dict, Any]:
    if request.content_type != "application/json":
        raise AnymailWebhookValidationFailure(
            "Mailgun tracking webhooks are JSON: configure the webhook with a JSON body"
        )
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise AnymailWebhookValidationFailure("the body is not valid UTF-8 JSON") from err
    if not isinstance(payload, dict):
        raise AnymailWebhookValidationFailure("the body must be a JSON object")
    signature = payload.get("signature")
    if not isinstance(signature, dict):
        raise AnymailWebhookValidationFailure("`signature` must be an object")
    if not isinstance(payload.get("event-data"), dict):
        raise AnymailWebhookValidationFailure("`event-data` must be an object")
    return signature, payload


def signature_problem(signature: dict, *, now: float) -> str | None:
    """What is wrong with a signature block's fields, or None (the HMAC is Anymail's check)."""
    token, stamp, signed = (signature.get(k) for k in ("token", "timestamp", "signature"))
    if not isinstance(token, str) or not _TOKEN.match(token):
        return "`signature.token` must be a string of letters and digits"
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        stamp = str(stamp)
    if not isinstance(stamp, str) or not _DIGITS.match(stamp):
        return "`signature.timestamp` must be seconds since the epoch"
    if not isinstance(signed, str) or not _SIGNATURE.match(signed):
        return "`signature.signature` must be 64 hexadecimal digits"
    age = now - int(stamp)
    if age > MAX_AGE.total_seconds():
        return f"signed {int(age)} s ago: older than {int(MAX_AGE.total_seconds())} s"
    if -age > MAX_FUTURE.total_seconds():
        return f"signed {int(-age)} s in the future"
    return None


def _has_nul_or_depth(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(
            _has_nul_or_depth(k, depth + 1) or _has_nul_or_depth(v, depth + 1)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(_has_nul_or_depth(item, depth + 1) for item in value)
    return False


def _optional(data: dict, key: str, kind: type | tuple[type, ...]) -> None:
    if key in data and data[key] is not None and not isinstance(data[key], kind):
        raise MalformedEvent(f"`event-data.{key}` has the wrong type")


def event_data_check(data: dict) -> None:
    """Raise `MalformedEvent` naming the field unless Anymail and our tracking can read it."""
    if _has_nul_or_depth(data):
        raise MalformedEvent("`event-data` holds a NUL character or is nested too deep")
    event = data.get("event")
    if not isinstance(event, str) or not 0 < len(event) <= MAX_EVENT:
        raise MalformedEvent("`event-data.event` must be a Mailgun event name")
    stamp = data.get("timestamp")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool) or not math.isfinite(stamp):
        raise MalformedEvent("`event-data.timestamp` must be seconds since the epoch")
    if not 0 <= stamp < 2**33:
        raise MalformedEvent("`event-data.timestamp` is out of range")
    recipient = data.get("recipient", "")
    if not isinstance(recipient, str) or len(recipient) > MAX_RECIPIENT:
        raise MalformedEvent(f"`event-data.recipient` must be at most {MAX_RECIPIENT} characters")
    message = data.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("headers"), dict):
        raise MalformedEvent("`event-data.message.headers` must be an object")
    headers = message["headers"]
    for name, limit in (("message-id", MAX_MESSAGE_ID), ("to", 2000)):
        value = headers.get(name, "")
        if not isinstance(value, str) or len(value) > limit:
            raise MalformedEvent(f"`event-data.message.headers.{name}` must be a short string")
    for key in ("delivery-status", "user-variables", "client-info", "reject", "flags"):
        _optional(data, key, dict)
    _optional(data, "tags", list)
    for key in ("severity", "reason", "url"):
        _optional(data, key, str)


class MailgunTrackingView(MailgunTrackingWebhookView):
    def validate_request(self, request: HttpRequest) -> None:
        # Anymail runs every `validate_request` of the class chain, this one first; its own
        # (the HMAC) follows.
        signature, _ = _signature_block(request)
        problem = signature_problem(signature, now=time.time())
        if problem:
            raise AnymailWebhookValidationFailure(f"Mailgun signature refused: {problem}")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.run_validators(request)
        payload = json.loads(request.body.decode("utf-8"))
        try:
            event_data_check(payload["event-data"])
        except MalformedEvent as exc:
            _refusal_record(payload, str(exc))
            return HttpResponse(f"event refused: {exc}", status=406, content_type="text/plain")
        return super().post(request, *args, **kwargs)

    def run_validators(self, request: HttpRequest) -> None:
        if getattr(request, "_mailgun_validated", False):
            return
        super().run_validators(request)
        request._mailgun_validated = True


def _refusal_record(payload: dict, reason: str) -> None:
    excerpt = json.dumps(payload.get("event-data"), default=str)[:EXCERPT].replace("\\u0000", "")
    token = str(payload["signature"].get("token", ""))
    logger.warning("mailgun webhook refused", extra={"reason": reason, "token": token})
    datapoint_record(
        name="mailgun_webhook_refused",
        dimensions={"reason": reason, "token": token, "event_data": excerpt},
    )
