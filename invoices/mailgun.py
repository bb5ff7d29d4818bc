"""What Mailgun already accepted: the answer that closes the crash window of an invoice email.

A worker that dies between Mailgun's "Queued" answer and our commit leaves a delivery in
`sending` with no message id. Sending again blindly could email the customer twice, so the
recovery asks Mailgun's events API whether a message carrying the attempt id (sent as the
`v:attempt_id` user-variable) was accepted, and parks the delivery for an operator whenever
Mailgun cannot answer. The question uses only the filters Mailgun documents (event, recipient,
a time window); the attempt id is matched here, across every page of the answer.

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
from collections.abc import Iterator
from email.utils import parseaddr
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
# Mailgun's largest page; a lookup follows `paging.next` through every page, up to a bound.
EVENTS_PAGE_LIMIT = 300
EVENTS_MAX_PAGES = 1000


# The answers Mailgun's API reference documents as refusing a request (bad request,
# unauthorized, domain not found, payload too large, too many requests): nothing was queued.
# Any other error answer (a 5xx from Mailgun or its edge, 402 "request failed") may come after
# the message was queued, so its outcome is unknown until Mailgun is asked.
REFUSAL_STATUSES = frozenset({400, 401, 404, 413, 429})


def mailgun_send_refused(exc: BaseException) -> bool:
    """Whether a failed send proves Mailgun did not queue the message.

    True for a documented refusal, for a connection that never opened (refused, or timed out
    while connecting), and for an error raised before any request was made. False for
    everything that may follow a written request: other error statuses, read timeouts,
    connection resets, an unreadable success answer.
    """
    import requests
    from anymail.exceptions import AnymailRequestsAPIError
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    status = getattr(exc, "status_code", None)
    if status is not None:
        return status in REFUSAL_STATUSES
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        for cause in (exc, exc.__cause__):
            reason = cause.args[0] if cause is not None and cause.args else None
            if isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError):
                return True
        return False
    return not isinstance(exc, (requests.RequestException, AnymailRequestsAPIError))


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


def mailgun_message_for_attempt(
    attempt_id: str, *, recipient: str, since: float | None = None
) -> str | None:
    """The normalised id of the message Mailgun accepted for this attempt, or None if none was.

    Asks the events API with filters Mailgun documents (`event`, `recipient`, a `begin`/`end`
    window) and matches our attempt id in each event's user variables here, page after page:
    Mailgun has no documented filter on user variables. `since` (epoch seconds, when the
    attempt started) narrows the window; by default it covers Mailgun's whole retention. None
    is only trustworthy once `EVENTS_SETTLE_SECONDS` have passed since the attempt. With a
    local (non-Mailgun) backend nothing can have reached Mailgun, so the answer is None.
    Raises `MailgunUnavailable` when Mailgun does not answer clearly.
    """
    if not attempt_id:
        raise ValueError("attempt_id is required")
    if not recipient:
        raise ValueError("recipient is required")
    if not mailgun_backend_in_use():
        return None
    now = time.time()
    begin = (since if since is not None else now - EVENTS_LOOKBACK_SECONDS) - CLOCK_SKEW_SECONDS
    query = {
        "event": "accepted",
        "recipient": parseaddr(recipient)[1] or recipient,
        "begin": str(int(begin)),
        "end": str(int(now + CLOCK_SKEW_SECONDS)),
        "ascending": "yes",
        "limit": str(EVENTS_PAGE_LIMIT),
    }
    message_ids = []
    for item in mailgun_events(query):
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


def mailgun_events(query: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every event matching `query`, following Mailgun's `paging.next` until a page is empty.

    Raises `MailgunUnavailable` when Mailgun does not answer clearly, when a page link leads
    away from the configured API, or when the pages do not end.
    """
    api_key = get_anymail_setting("api_key", esp_name="Mailgun", allow_bare=True, default="")
    if not api_key:
        raise MailgunUnavailable("Mailgun is the email backend but no MAILGUN_API_KEY is set")
    events_url = _events_url()
    url = f"{events_url}?{urlencode(query)}"
    for _ in range(EVENTS_MAX_PAGES):
        page = _get_json(url, api_key)
        items = page.get("items")
        if not isinstance(items, list):
            raise MailgunUnavailable("Mailgun's events answer has no list of items")
        if not items:
            return
        for item in items:
            if not isinstance(item, dict):
                raise MailgunUnavailable("Mailgun's events answer holds an item that is no object")
            yield item
        next_url = (page.get("paging") or {}).get("next")
        if not isinstance(next_url, str) or not next_url.startswith(f"{events_url}/"):
            raise MailgunUnavailable(
                f"Mailgun's events answer has no usable next page: {next_url!r}"
            )
        url = next_url
    raise MailgunUnavailable(f"Mailgun's events did not end within {EVENTS_MAX_PAGES} pages")


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
