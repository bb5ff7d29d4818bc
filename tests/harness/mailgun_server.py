"""A Mailgun-compatible HTTP server for tests and local runs (standard library only).

It speaks the parts of Mailgun's API that the project uses, on the wire as Mailgun does:
`POST /v3/<domain>/messages` (form-urlencoded or multipart, HTTP Basic `api:<key>`), the
events API `GET /v3/<domain>/events` with the filters and paging Mailgun documents (so a
sender can ask whether an attempt already went out), stored templates
`GET /v3/<domain>/templates/<name>?active=yes`,
and tracking webhooks signed with HMAC-SHA256 like Mailgun's. Faults (5xx answers, slow
answers, answers lost after the message was accepted) can be injected to exercise retries.

Standalone: `python -m tests.harness.mailgun_server --port 8025 --domain D --api-key K`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import email.policy
import hashlib
import hmac
import json
import logging
import secrets
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, getaddresses, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

logger = logging.getLogger(__name__)

EVENTS_MAX_LIMIT = 300
EVENTS_DEFAULT_LIMIT = 100
_BODY_FIELDS = ("text", "html", "amp-html", "template")
# The filter fields Mailgun's API reference lists for `GET /v3/{domain}/events`, and only
# those: a filter Mailgun does not document (such as one on user variables) is refused with
# 400, so no test can pass on a filter the real service would not apply.
_EVENT_FILTERS = frozenset(
    {
        "event",
        "list",
        "attachment",
        "from",
        "message-id",
        "subject",
        "to",
        "size",
        "recipient",
        "recipients",
        "tags",
        "severity",
    }
)
_EVENT_QUERY_OPTIONS = frozenset({"begin", "end", "ascending", "limit", "pretty"})
_HTML5_ESCAPES = (("%22", '"'), ("%0D", "\r"), ("%0A", "\n"))


@dataclasses.dataclass(frozen=True)
class Attachment:
    """A file received with a message, byte for byte."""

    filename: str
    content_type: str
    content: bytes


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    """A message the server accepted, with Mailgun's fields already decoded."""

    id: str
    domain: str
    from_email: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str | None
    text: str | None
    html: str | None
    amp_html: str | None
    template: str | None
    template_variables: dict[str, Any] | None
    user_variables: dict[str, Any]
    recipient_variables: dict[str, Any] | None
    options: dict[str, list[str]]
    headers: dict[str, str]
    attachments: list[Attachment]
    inline: list[Attachment]
    fields: list[tuple[str, str]]
    timestamp: float

    @property
    def recipients(self) -> list[str]:
        """Bare addresses of every recipient (to, cc, bcc): Mailgun tracks each one."""
        return [addr for _, addr in getaddresses([*self.to, *self.cc, *self.bcc])]

    @property
    def tags(self) -> list[str]:
        return list(self.options.get("tag", []))

    @property
    def bare_id(self) -> str:
        """The id as the events API and webhooks spell it, without angle brackets."""
        return self.id.strip("<>")


@dataclasses.dataclass
class _Fault:
    status: int | None
    delay: float
    accept: bool


class _MailgunError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def tracking_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook signature: hex HMAC-SHA256 of timestamp + token."""
    return hmac.new(
        signing_key.encode("ascii"), f"{timestamp}{token}".encode("ascii"), hashlib.sha256
    ).hexdigest()


def signed_tracking_payload(
    signing_key: str,
    *,
    event: str = "delivered",
    message_id: str,
    recipient: str,
    event_id: str | None = None,
    timestamp: float | None = None,
    signed_at: float | None = None,
    token: str | None = None,
    user_variables: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    message_headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a tracking-webhook body exactly as Mailgun signs and sends it.

    Mailgun resends the same body when a delivery of the webhook fails, so the signature
    token (which Anymail reports as `event_id`) is derived from `event_id` when one is given:
    the same event posted twice looks like a redelivery, distinct events never collide.
    The signature's timestamp is when the webhook is posted (now, unless `signed_at`), not
    when the event happened, as Mailgun signs it.
    """
    event_id = event_id or _event_id()
    timestamp = time.time() if timestamp is None else timestamp
    if token is None:
        token = hashlib.sha256(f"mailgun-event:{event_id}".encode()).hexdigest()[:50]
    signed_at = str(int(time.time() if signed_at is None else signed_at))
    headers = {"message-id": message_id.strip("<>"), "to": recipient}
    headers.update(message_headers or {})
    event_data: dict[str, Any] = {
        "id": event_id,
        "timestamp": timestamp,
        "log-level": "info",
        "event": event,
        "recipient": recipient,
        "recipient-domain": recipient.rpartition("@")[2],
        "envelope": {"transport": "smtp", "targets": recipient},
        "flags": {"is-authenticated": True, "is-test-mode": False},
        "message": {"headers": headers, "attachments": [], "size": 0},
        "campaigns": [],
        "tags": list(tags),
        "user-variables": dict(user_variables or {}),
    }
    event_data.update(_event_details(event, extra or {}))
    event_data.update(extra or {})
    return {
        "signature": {
            "timestamp": signed_at,
            "token": token,
            "signature": tracking_signature(signing_key, signed_at, token),
        },
        "event-data": event_data,
    }


def _event_details(event: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    if event == "delivered":
        return {
            "delivery-status": {
                "code": 250,
                "message": "OK",
                "description": "",
                "attempt-no": 1,
                "tls": True,
            }
        }
    if event == "failed":
        temporary = extra.get("severity") == "temporary"
        return {
            "severity": "temporary" if temporary else "permanent",
            "reason": "generic" if temporary else "bounce",
            "delivery-status": {
                "code": 452 if temporary else 550,
                "message": "4.2.2 Mailbox full" if temporary else "5.1.1 Mailbox does not exist",
                "description": "",
                "attempt-no": 1,
            },
        }
    if event == "rejected":
        return {"reject": {"reason": "Sandbox subdomains are for test purposes only"}}
    if event in {"opened", "clicked", "unsubscribed", "complained"}:
        return {
            "ip": "203.0.113.7",
            "client-info": {
                "client-type": "mobile browser",
                "client-os": "iOS",
                "device-type": "mobile",
                "client-name": "Mobile Safari",
                "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            },
            "geolocation": {"country": "US", "region": "CA", "city": "San Francisco"},
        }
    return {}


def _event_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _single_addresses(values: Iterable[str]) -> list[str]:
    return [formataddr(pair) if pair[0] else pair[1] for pair in getaddresses(list(values))]


def _valid_address(value: str) -> bool:
    pairs = getaddresses([value])
    return bool(pairs) and all("@" in addr.strip("@") for _, addr in pairs)


def _parse_form(
    content_type: str, body: bytes
) -> tuple[list[tuple[str, str]], list[tuple[str, Attachment]]]:
    """Decode a form body into text fields and (field, Attachment) file parts, in order."""
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return _parse_multipart(content_type, body)
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return pairs, []


def _parse_multipart(
    content_type: str, body: bytes
) -> tuple[list[tuple[str, str]], list[tuple[str, Attachment]]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    document = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not isinstance(document, EmailMessage) or not document.is_multipart():
        raise _MailgunError(400, "Invalid multipart/form-data body")
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, Attachment]] = []
    for part in document.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise _MailgunError(400, "Form part without a name")
        content = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            charset = part.get_content_charset() or "utf-8"
            fields.append((_html5_unescape(name), content.decode(charset, "replace")))
        else:
            files.append(
                (
                    _html5_unescape(name),
                    Attachment(_html5_unescape(filename), part.get_content_type(), content),
                )
            )
    return fields, files


def _html5_unescape(value: str) -> str:
    """Undo the escaping HTML5 form encoders (urllib3 among them) apply to part names."""
    for escaped, char in _HTML5_ESCAPES:
        value = value.replace(escaped, char).replace(escaped.lower(), char)
    return value


def _json_field(fields: list[tuple[str, str]], name: str) -> dict[str, Any] | None:
    values = [value for key, value in fields if key == name]
    if not values:
        return None
    if len(values) > 1:
        raise _MailgunError(400, f"'{name}' parameter must be given once")
    try:
        parsed = json.loads(values[0])
    except ValueError as err:
        raise _MailgunError(400, f"'{name}' parameter is not valid JSON") from err
    if not isinstance(parsed, dict):
        raise _MailgunError(400, f"'{name}' parameter must be a JSON object")
    return parsed


def _build_message(
    domain: str, fields: list[tuple[str, str]], files: list[tuple[str, Attachment]]
) -> StoredMessage:
    """Validate a send request as Mailgun does and turn it into a StoredMessage."""

    def values(name: str) -> list[str]:
        return [value for key, value in fields if key == name]

    def first(name: str) -> str | None:
        found = values(name)
        return found[-1] if found else None

    senders = [value for value in values("from") if value.strip()]
    if not senders:
        raise _MailgunError(400, "'from' parameter is missing")
    to = _single_addresses(value for value in values("to") if value.strip())
    if not to:
        raise _MailgunError(400, "'to' parameter is missing")
    for name in ("from", "to", "cc", "bcc"):
        for value in values(name):
            if value.strip() and not _valid_address(value):
                raise _MailgunError(400, f"'{name}' parameter is not a valid address: {value}")
    if not any(first(name) for name in _BODY_FIELDS):
        raise _MailgunError(
            400, "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters"
        )
    template_variables = _json_field(fields, "t:variables")
    recipient_variables = _json_field(fields, "recipient-variables")
    header_variables = _json_field(fields, "h:X-Mailgun-Variables") or {}

    user_variables: dict[str, Any] = dict(header_variables)
    options: dict[str, list[str]] = {}
    headers: dict[str, str] = {}
    for key, value in fields:
        prefix, _, name = key.partition(":")
        if not name:
            continue
        if prefix == "v":
            user_variables[name] = value
        elif prefix == "o":
            options.setdefault(name, []).append(value)
        elif prefix == "h" and name.lower() != "x-mailgun-variables":
            headers[name] = value

    now = datetime.now(UTC)
    return StoredMessage(
        id=f"<{now:%Y%m%d%H%M%S}.{secrets.token_hex(8)}@{domain}>",
        domain=domain,
        from_email=", ".join(senders),
        to=to,
        cc=_single_addresses(v for v in values("cc") if v.strip()),
        bcc=_single_addresses(v for v in values("bcc") if v.strip()),
        subject=first("subject"),
        text=first("text"),
        html=first("html"),
        amp_html=first("amp-html"),
        template=first("template"),
        template_variables=template_variables,
        user_variables=user_variables,
        recipient_variables=recipient_variables,
        options=options,
        headers=headers,
        attachments=[item for field, item in files if field == "attachment"],
        inline=[item for field, item in files if field == "inline"],
        fields=list(fields),
        timestamp=now.timestamp(),
    )


def _accepted_events(message: StoredMessage) -> list[dict[str, Any]]:
    """One `accepted` event per recipient, the way Mailgun logs a send."""
    sender = getaddresses([message.from_email])[0][1]
    attachments = [
        {"filename": item.filename, "content-type": item.content_type, "size": len(item.content)}
        for item in message.attachments
    ]
    size = sum(len(value) for _, value in message.fields) + sum(a["size"] for a in attachments)
    headers = {
        "to": ", ".join(message.to),
        "message-id": message.bare_id,
        "from": message.from_email,
        "subject": message.subject or "",
    }
    events = []
    for recipient in message.recipients:
        item: dict[str, Any] = {
            "id": _event_id(),
            "event": "accepted",
            "timestamp": message.timestamp,
            "log-level": "info",
            "method": "HTTP",
            "envelope": {"sender": sender, "targets": recipient, "transport": "smtp"},
            "flags": {
                "is-authenticated": True,
                "is-test-mode": message.options.get("testmode", ["no"])[-1] == "yes",
            },
            "message": {
                "headers": headers,
                "attachments": attachments,
                "recipients": message.recipients,
                "size": size,
            },
            "recipient": recipient,
            "recipient-domain": recipient.rpartition("@")[2],
            "tags": message.tags,
            "campaigns": [],
            "user-variables": dict(message.user_variables),
        }
        if message.template:
            item["template"] = {"name": message.template}
        events.append(item)
    return events


def _parse_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError) as err:
        raise _MailgunError(400, f"Invalid time: {value}") from err


def _term_matches(actual: Any, expression: str) -> bool:
    """Mailgun filter expressions, reduced to exact terms joined by OR."""
    wanted = {term.strip().strip('"').lower() for term in expression.split(" OR ")}
    if isinstance(actual, list):
        return any(str(value).lower() in wanted for value in actual)
    return actual is not None and str(actual).lower() in wanted


class EventQuery:
    """A parsed events request: filters, time range, direction and page size."""

    def __init__(self, params: Mapping[str, str]) -> None:
        unknown = set(params) - _EVENT_FILTERS - _EVENT_QUERY_OPTIONS
        if unknown:
            raise _MailgunError(400, f"Invalid parameter: {sorted(unknown)[0]}")
        self.params = dict(params)
        try:
            self.limit = int(params.get("limit", EVENTS_DEFAULT_LIMIT))
        except ValueError as err:
            raise _MailgunError(400, "'limit' must be an integer") from err
        if not 1 <= self.limit <= EVENTS_MAX_LIMIT:
            raise _MailgunError(400, f"'limit' must be between 1 and {EVENTS_MAX_LIMIT}")
        self.begin = _parse_time(params["begin"]) if "begin" in params else None
        self.end = _parse_time(params["end"]) if "end" in params else None
        ascending = params.get("ascending")
        if ascending not in {None, "yes", "no"}:
            raise _MailgunError(400, "'ascending' must be 'yes' or 'no'")
        if ascending is None and self.begin is not None and self.end is not None:
            ascending = "yes" if self.end >= self.begin else "no"
        self.ascending = ascending == "yes"

    def _in_range(self, timestamp: float) -> bool:
        if self.begin is not None and self.end is not None:
            low, high = sorted((self.begin, self.end))
            return low <= timestamp <= high
        if self.begin is None:
            return True
        return timestamp >= self.begin if self.ascending else timestamp <= self.begin

    def matches(self, item: Mapping[str, Any]) -> bool:
        headers = item.get("message", {}).get("headers", {})
        if not self._in_range(item["timestamp"]):
            return False
        checks = {
            "event": item.get("event"),
            "recipient": item.get("recipient"),
            "message-id": headers.get("message-id"),
            "tags": item.get("tags", []),
            "subject": headers.get("subject"),
            "from": [addr for _, addr in getaddresses([headers.get("from", "")])],
            "to": [addr for _, addr in getaddresses([headers.get("to", "")])],
            "severity": item.get("severity"),
            "list": (item.get("mailing-list") or {}).get("address"),
            "size": (item.get("message") or {}).get("size"),
            "recipients": item.get("message", {}).get("recipients", []),
            "attachment": [
                a.get("filename") for a in item.get("message", {}).get("attachments", [])
            ],
        }
        for name, actual in checks.items():
            expression = self.params.get(name)
            if name == "message-id" and expression:
                expression = expression.strip("<>")
            if expression is not None and not _term_matches(actual, expression):
                return False
        return True


class MailgunServer:
    """Mailgun's send, events and webhook-signing behaviour on a local port.

    Thread-safe: the HTTP handlers run in their own threads while a test reads `messages`
    or injects faults.
    """

    def __init__(
        self,
        *,
        domain: str,
        api_key: str,
        webhook_signing_key: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.domain = domain
        self.api_key = api_key
        self.webhook_signing_key = webhook_signing_key
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._messages: list[StoredMessage] = []
        self._events: list[tuple[int, dict[str, Any]]] = []
        self._sequence = 0
        self._templates: dict[str, dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._attempts = 0
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MailgunServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._httpd is not None:
            return
        self._stopping.clear()
        httpd = ThreadingHTTPServer((self.host, self._requested_port), _handler_for(self))
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mailgun-server:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wake delayed handlers and join every thread; safe to call twice."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()
        self._httpd = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            return self._requested_port
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Root of the server, e.g. `http://127.0.0.1:8025`."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What `MAILGUN_API_URL` points at: the root plus `/v3`."""
        return f"{self.url}/v3"

    @property
    def messages(self) -> list[StoredMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def attempts(self) -> int:
        """Message POSTs received, failed ones included, so tests can count retries."""
        with self._lock:
            return self._attempts

    def message(self, message_id: str) -> StoredMessage:
        bare = message_id.strip("<>")
        with self._lock:
            for message in self._messages:
                if message.bare_id == bare:
                    return message
        raise KeyError(message_id)

    def events(self) -> list[dict[str, Any]]:
        """Every logged event, oldest first."""
        with self._lock:
            return [json.loads(json.dumps(item)) for _, item in self._events]

    def clear(self) -> None:
        """Forget messages, events and the attempt count (pending faults stay)."""
        with self._lock:
            self._messages.clear()
            self._events.clear()
            self._attempts = 0

    def put_template(
        self, name: str, content: str, *, tag: str = "initial", engine: str = "handlebars"
    ) -> None:
        """Store a template with one active version, as an operator would in Mailgun."""
        created = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")
        with self._lock:
            self._templates[name.lower()] = {
                "name": name.lower(),
                "description": "",
                "createdAt": created,
                "createdBy": "",
                "id": secrets.token_hex(12),
                "version": {
                    "tag": tag,
                    "template": content,
                    "engine": engine,
                    "mjml": "",
                    "createdAt": created,
                    "comment": "",
                    "active": True,
                    "id": secrets.token_hex(12),
                    "headers": {},
                },
            }

    def remove_template(self, name: str) -> None:
        with self._lock:
            self._templates.pop(name.lower(), None)

    def clear_templates(self) -> None:
        with self._lock:
            self._templates.clear()

    def _template_answer(self, name: str, params: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            stored = self._templates.get(name.lower())
            if stored is None:
                raise _MailgunError(404, "template not found")
            template = json.loads(json.dumps(stored))
        if params.get("active") != "yes":
            template.pop("version")
        return {"template": template}

    def fail_next(
        self, n: int = 1, status: int | None = 503, delay: float = 0.0, accept: bool = False
    ) -> None:
        """Make the next `n` message POSTs fail.

        Each waits `delay` seconds, then answers `status` with a Mailgun-style JSON error.
        With `accept=True` the message is stored (and logged as accepted) before the failure,
        as when Mailgun queues a message but the answer is lost; `status=None` answers the
        normal success after the delay, which a client with a shorter timeout never sees.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._faults.extend(
                _Fault(status=status, delay=delay, accept=accept or status is None)
                for _ in range(n)
            )

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def record_event(self, item: Mapping[str, Any]) -> None:
        """Append an event (same shape as the events API items) to the log."""
        with self._lock:
            self._record(dict(item))

    def tracking_payload(
        self,
        event: str = "delivered",
        message_id: str | None = None,
        recipient: str | None = None,
        event_id: str | None = None,
        timestamp: float | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A signed webhook body for a stored message, logged as an event like Mailgun does.

        Defaults to the latest message and its first recipient; the message's user variables,
        tags and headers are carried over so receivers can match it to what was sent.
        """
        with self._lock:
            if message_id is None and not self._messages:
                raise LookupError("no message has been sent")
            bare = message_id.strip("<>") if message_id else None
            message = next(
                (m for m in reversed(self._messages) if bare is None or m.bare_id == bare), None
            )
        if message is not None:
            kwargs.setdefault("user_variables", message.user_variables)
            kwargs.setdefault("tags", message.tags)
            kwargs.setdefault(
                "message_headers",
                {
                    "from": message.from_email,
                    "to": ", ".join(message.to),
                    "subject": message.subject or "",
                },
            )
            message_id = message.id
            recipient = recipient or message.recipients[0]
        if message_id is None or recipient is None:
            raise LookupError(f"unknown message {message_id!r}: give message_id and recipient")
        payload = signed_tracking_payload(
            self.webhook_signing_key,
            event=event,
            message_id=message_id,
            recipient=recipient,
            event_id=event_id,
            timestamp=timestamp,
            **kwargs,
        )
        self.record_event(payload["event-data"])
        return payload

    def post_tracking_webhook(
        self,
        url: str,
        event: str = "delivered",
        message_id: str | None = None,
        recipient: str | None = None,
        event_id: str | None = None,
        timestamp: float | None = None,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        """POST a signed tracking webhook to `url` as Mailgun would; returns (status, body)."""
        payload = self.tracking_payload(
            event, message_id, recipient, event_id=event_id, timestamp=timestamp, **kwargs
        )
        return post_json(url, payload)

    def _record(self, item: dict[str, Any]) -> None:
        self._sequence += 1
        self._events.append((self._sequence, item))

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            self._attempts += 1
            return self._faults.pop(0) if self._faults else None

    def _accept(self, message: StoredMessage) -> None:
        with self._lock:
            self._messages.append(message)
            for item in _accepted_events(message):
                self._record(item)

    def _wait(self, delay: float) -> None:
        if delay > 0:
            self._stopping.wait(delay)

    def _events_page(self, query: EventQuery, cursor: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            matched = [(seq, item) for seq, item in self._events if query.matches(item)]
        ordered = matched if query.ascending else matched[::-1]

        def ahead(seq: int, pivot: int) -> bool:
            return seq > pivot if query.ascending else seq < pivot

        pivot = cursor.get("pivot")
        direction = cursor.get("dir", "next")
        if direction == "last":
            page = ordered[-query.limit :]
        elif direction == "previous" and pivot is None:
            page = []
        elif direction == "previous":
            before = [pair for pair in ordered if ahead(pivot, pair[0])]
            page = before[-query.limit :]
        else:
            page = [pair for pair in ordered if pivot is None or ahead(pair[0], pivot)]
            page = page[: query.limit]
        next_pivot = page[-1][0] if page else pivot
        previous_pivot = page[0][0] if page else pivot
        return {
            "items": [json.loads(json.dumps(item)) for _, item in page],
            "paging": {
                "first": self._page_url(query, None, "next"),
                "last": self._page_url(query, None, "last"),
                "next": self._page_url(query, next_pivot, "next"),
                "previous": self._page_url(query, previous_pivot, "previous"),
            },
        }

    def _page_url(self, query: EventQuery, pivot: int | None, direction: str) -> str:
        cursor = {"q": query.params, "pivot": pivot, "dir": direction}
        token = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")
        return f"{self.api_url}/{quote(self.domain)}/events/{token}"


def post_json(url: str, payload: Mapping[str, Any], timeout: float = 10.0) -> tuple[int, bytes]:
    """POST a JSON body and return (status, body) whatever the status."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _decode_cursor(token: str) -> dict[str, Any]:
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as err:
        raise _MailgunError(400, "Invalid page token") from err
    if not isinstance(cursor, dict) or not isinstance(cursor.get("q"), dict):
        raise _MailgunError(400, "Invalid page token")
    return cursor


def _handler_for(server: MailgunServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_MailgunHandler):
        mailgun = server

    return Handler


class _MailgunHandler(BaseHTTPRequestHandler):
    """HTTP/1.0, one request per connection, so stopping never waits on an idle client."""

    mailgun: MailgunServer
    server_version = "nginx"
    sys_version = ""
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        parts = urlsplit(self.path)
        segments = [segment for segment in parts.path.split("/") if segment]
        try:
            if len(segments) < 3 or segments[0] != "v3":
                raise _MailgunError(404, "Not Found")
            domain, resource, rest = segments[1], segments[2], segments[3:]
            if method == "POST" and resource == "messages" and not rest:
                self._send_message(domain, body)
                return
            self._authorize()
            self._check_domain(domain)
            if method == "GET" and resource == "templates" and len(rest) == 1:
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                self._reply(200, self.mailgun._template_answer(rest[0], params))
                return
            if method == "GET" and resource == "events" and len(rest) <= 1:
                if rest:
                    cursor = _decode_cursor(rest[0])
                    query = EventQuery(cursor["q"])
                else:
                    params = dict(parse_qsl(parts.query, keep_blank_values=True))
                    query, cursor = EventQuery(params), {}
                self._reply(200, self.mailgun._events_page(query, cursor))
                return
            raise _MailgunError(404, "Not Found")
        except _MailgunError as err:
            self._reply(err.status, {"message": err.message})

    def _send_message(self, domain: str, body: bytes) -> None:
        fault = self.mailgun._take_fault()
        if fault is None:
            message = self._parse_message(domain, body)
            self.mailgun._accept(message)
            self._reply(200, {"id": message.id, "message": "Queued. Thank you."})
            return
        try:
            message = self._parse_message(domain, body)
        except _MailgunError:
            self.mailgun._wait(fault.delay)
            if fault.status is None:
                raise
            self._reply_fault(fault.status)
            return
        if fault.accept:
            self.mailgun._accept(message)
        self.mailgun._wait(fault.delay)
        if fault.status is None:
            self._reply(200, {"id": message.id, "message": "Queued. Thank you."})
        else:
            self._reply_fault(fault.status)

    def _parse_message(self, domain: str, body: bytes) -> StoredMessage:
        self._authorize()
        self._check_domain(domain)
        fields, files = _parse_form(self.headers.get("Content-Type", ""), body)
        return _build_message(self.mailgun.domain, fields, files)

    def _reply_fault(self, status: int) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        self._reply(status, {"message": phrase})

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _authorize(self) -> None:
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        try:
            user, _, key = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            user, key = "", ""
        expected = self.mailgun.api_key.encode()
        if not (
            scheme.lower() == "basic"
            and user == "api"
            and hmac.compare_digest(key.encode(), expected)
        ):
            raise _MailgunError(401, "Invalid private key")

    def _check_domain(self, domain: str) -> None:
        if domain.lower() != self.mailgun.domain.lower():
            raise _MailgunError(404, f"Domain not found: {domain}")

    def _reply(self, status: int, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away before the %s answer", status)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, for local runs against a fake Mailgun."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--webhook-signing-key", default="")
    args = parser.parse_args(argv)
    server = MailgunServer(
        domain=args.domain,
        api_key=args.api_key,
        webhook_signing_key=args.webhook_signing_key,
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with server:
        print(f"Mailgun-compatible server on {server.api_url} for {server.domain}", flush=True)
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
