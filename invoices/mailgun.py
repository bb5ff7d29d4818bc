"""What Mailgun already accepted: the answer that closes the crash window of an invoice email.

A worker that dies between Mailgun's "Queued" answer and our commit leaves a delivery in
`sending` with no message id. Sending again blindly could email the customer twice, so the
recovery asks Mailgun's events API whether a message carrying the attempt id (sent as the
`v:attempt_id` user-variable) was accepted, and parks the delivery for an operator whenever
Mailgun cannot answer.

Message ids: Mailgun's send API answers `{"id": "<20260401060000.1a2b@notify.adventive.com>"}`
and Anymail reports that string unchanged as `anymail_status.message_id`; Anymail's tracking
webhooks add the angle brackets when Mailgun leaves them out. The events API spells the same
id bare (`message.headers.message-id`). `normalise_message_id` maps every spelling to
Anymail's bracketed form, so ids from sends, events and webhooks compare equal.
"""

import json
import logging
import time
import urllib.error
import urllib.request
from base64 import b64encode
from typing import Any
from urllib.parse import quote, urlencode

from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.utils import get_anymail_setting
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.mailgun.net/v3"
EVENTS_TIMEOUT_SECONDS = 10.0
# Mailgun only guarantees that events older than about half an hour are in its event store:
# a "not found" for a younger attempt is not proof that nothing went out.
# https://documentation.mailgun.com/docs/mailgun/user-manual/events/
EVENTS_SETTLE_SECONDS = 30 * 60
# Mailgun keeps events for at most 30 days; looking further back finds nothing more.
EVENTS_LOOKBACK_SECONDS = 30 * 24 * 3600
# Lets a caller's clock run a little behind Mailgun's without missing a fresh event.
CLOCK_SKEW_SECONDS = 300


class MailgunUnavailable(Exception):
    """Mailgun could not say whether an attempt was accepted: park it, never resend blindly."""


def normalise_message_id(message_id: str) -> str:
    """One spelling for a Mailgun message id, bare or bracketed: Anymail's `<id@domain>`."""
    bare = message_id.strip().strip("<>").strip()
    if not bare:
        raise ValueError(f"not a Mailgun message id: {message_id!r}")
    return f"<{bare}>"


def mailgun_backend_in_use() -> bool:
    """Whether Django's configured email backend is Anymail's Mailgun backend (or a subclass)."""
    backend = import_string(settings.EMAIL_BACKEND)
    return isinstance(backend, type) and issubclass(backend, MailgunBackend)


def mailgun_message_for_attempt(attempt_id: str, *, since: float | None = None) -> str | None:
    """The normalised id of the message Mailgun accepted for this attempt, or None if none was.

    `since` (epoch seconds, when the attempt started) narrows the search; by default it covers
    Mailgun's whole retention. None is only trustworthy once `EVENTS_SETTLE_SECONDS` have passed
    since the attempt. With a local (non-Mailgun) backend nothing can have reached Mailgun, so
    the answer is None. Raises `MailgunUnavailable` when Mailgun does not answer clearly.
    """
    if not attempt_id:
        raise ValueError("attempt_id is required")
    if not mailgun_backend_in_use():
        return None
    api_key = get_anymail_setting("api_key", esp_name="Mailgun", allow_bare=True, default="")
    if not api_key:
        raise MailgunUnavailable("Mailgun is the email backend but no MAILGUN_API_KEY is set")
    now = time.time()
    begin = (since if since is not None else now - EVENTS_LOOKBACK_SECONDS) - CLOCK_SKEW_SECONDS
    query = {
        "event": "accepted",
        "user-variables": json.dumps({"attempt_id": attempt_id}),
        "begin": str(int(begin)),
        "ascending": "yes",
        "limit": "300",
    }
    page = _get_json(f"{_events_url()}?{urlencode(query)}", api_key)
    items = page.get("items")
    if not isinstance(items, list):
        raise MailgunUnavailable("Mailgun's events answer has no list of items")
    message_ids = []
    for item in items:
        variables = item.get("user-variables") or {}
        if str(variables.get("attempt_id")) != attempt_id:
            continue
        raw = ((item.get("message") or {}).get("headers") or {}).get("message-id")
        if not raw:
            raise MailgunUnavailable(f"accepted event for attempt {attempt_id} has no message id")
        message_id = normalise_message_id(raw)
        if message_id not in message_ids:
            message_ids.append(message_id)
    if len(message_ids) > 1:
        logger.warning(
            "Mailgun accepted several messages for one attempt",
            extra={"attempt_id": attempt_id, "message_ids": message_ids},
        )
    return message_ids[0] if message_ids else None


def _events_url() -> str:
    api_url = get_anymail_setting("api_url", esp_name="Mailgun", default=DEFAULT_API_URL)
    if not api_url.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"MAILGUN_API_URL must be an http(s) URL: {api_url!r}")
    domain = (
        get_anymail_setting("sender_domain", esp_name="Mailgun", allow_bare=True, default=None)
        or settings.BILLING_FROM_EMAIL.rpartition("@")[2]
    )
    return f"{api_url.rstrip('/')}/{quote(domain, safe='')}/events"


def _get_json(url: str, api_key: str) -> dict[str, Any]:
    token = b64encode(f"api:{api_key}".encode()).decode("ascii")
    request = urllib.request.Request(  # noqa: S310
        url, headers={"Authorization": f"Basic {token}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=EVENTS_TIMEOUT_SECONDS) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as err:
        raise MailgunUnavailable(f"Mailgun's events API answered HTTP {err.code}") from err
    except (urllib.error.URLError, OSError) as err:
        raise MailgunUnavailable(f"Mailgun's events API is unreachable: {err}") from err
    try:
        page = json.loads(body)
    except ValueError as err:
        raise MailgunUnavailable("Mailgun's events API answered something other than JSON") from err
    if not isinstance(page, dict):
        raise MailgunUnavailable("Mailgun's events API answered something other than an object")
    return page
