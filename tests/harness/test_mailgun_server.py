"""The Mailgun-compatible server answers as Mailgun does, so tests built on it mean something."""

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.harness.mailgun_server import MailgunServer, signed_tracking_payload, tracking_signature

DOMAIN = "mg.example.com"
API_KEY = "key-test-0123456789"
SIGNING_KEY = "signing-key-test"


@pytest.fixture
def server() -> Iterator[MailgunServer]:
    with MailgunServer(
        domain=DOMAIN, api_key=API_KEY, webhook_signing_key=SIGNING_KEY
    ) as running_server:
        yield running_server


def _call(
    server: MailgunServer,
    method: str,
    path: str,
    fields: Sequence[tuple[str, str]] = (),
    api_key: str = API_KEY,
) -> tuple[int, dict[str, Any]]:
    token = base64.b64encode(f"api:{api_key}".encode()).decode()
    data = urlencode(list(fields)).encode() if method == "POST" else None
    request = urllib.request.Request(
        f"{server.api_url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _send(server: MailgunServer, *extra: tuple[str, str], **kwargs: Any) -> tuple[int, dict]:
    fields = [("from", f"Billing <billing@{DOMAIN}>"), ("to", "ap@customer.example"), *extra]
    if not any(name in {"text", "html", "template"} for name, _ in extra):
        fields.append(("text", "Your invoice is ready."))
    return _call(server, "POST", f"/{DOMAIN}/messages", fields, **kwargs)


def _events(server: MailgunServer, **params: str) -> tuple[int, dict[str, Any]]:
    return _call(server, "GET", f"/{DOMAIN}/events?{urlencode(params)}")


def test_send_with_a_wrong_api_key_is_refused_with_401_and_nothing_is_stored(server):
    status, body = _send(server, api_key="key-wrong")

    assert status == 401
    assert body == {"message": "Invalid private key"}
    assert server.messages == []


def test_send_to_an_unknown_domain_is_404_with_mailguns_wording(server):
    status, body = _call(server, "POST", "/other.example.com/messages", [("to", "a@b.example")])

    assert status == 404
    assert body["message"] == "Domain not found: other.example.com"


def test_send_without_to_is_400_naming_the_to_parameter(server):
    fields = [("from", f"billing@{DOMAIN}"), ("text", "hello")]

    status, body = _call(server, "POST", f"/{DOMAIN}/messages", fields)

    assert status == 400
    assert "'to'" in body["message"]
    assert server.messages == []


def test_send_without_any_body_or_template_is_400_naming_the_fields(server):
    fields = [("from", f"billing@{DOMAIN}"), ("to", "ap@customer.example")]

    status, body = _call(server, "POST", f"/{DOMAIN}/messages", fields)

    assert status == 400
    assert "'text'" in body["message"]
    assert "'template'" in body["message"]


def test_accepted_send_answers_queued_with_an_id_on_the_domain(server):
    status, body = _send(server, ("subject", "Invoice"), ("v:delivery", "42"))

    assert status == 200
    assert body["message"] == "Queued. Thank you."
    assert body["id"].startswith("<")
    assert body["id"].endswith(f"@{DOMAIN}>")
    [message] = server.messages
    assert message.id == body["id"]
    assert message.subject == "Invoice"
    assert message.user_variables == {"delivery": "42"}


def test_next_two_sends_fail_with_503_then_the_third_is_accepted(server):
    server.fail_next(2, status=503)

    results = [_send(server, ("v:attempt", str(n))) for n in range(3)]

    assert [status for status, _ in results] == [503, 503, 200]
    assert server.attempts == 3
    [message] = server.messages
    assert message.user_variables == {"attempt": "2"}
    assert message.id == results[2][1]["id"]


def test_a_failure_after_acceptance_still_shows_the_message_in_events(server):
    server.fail_next(1, status=502, accept=True)

    status, _ = _send(server, ("v:attempt_key", "delivery-7:invoice_new:1"))

    assert status == 502
    _, page = _events(server, recipient="ap@customer.example")
    assert [item["event"] for item in page["items"]] == ["accepted"]
    assert page["items"][0]["user-variables"] == {"attempt_key": "delivery-7:invoice_new:1"}


def test_a_slow_answer_times_out_the_client_although_the_message_was_accepted(server):
    server.fail_next(1, status=None, delay=2.0)

    with pytest.raises(requests.Timeout):
        requests.post(
            f"{server.api_url}/{DOMAIN}/messages",
            auth=("api", API_KEY),
            data={"from": f"billing@{DOMAIN}", "to": "ap@customer.example", "text": "hi"},
            timeout=0.3,
        )

    assert len(server.messages) == 1


def test_events_refuse_a_filter_on_user_variables_which_mailgun_does_not_document(server):
    _send(server, ("v:delivery_id", "102"), ("v:attempt", "1"))

    status, body = _events(server, **{"user-variables": json.dumps({"delivery_id": "102"})})

    assert status == 400
    assert "user-variables" in body["message"]


def test_events_filter_by_message_id_tags_and_time_window(server):
    _, first = _send(server, ("o:tag", "invoice"))
    _, second = _send(server, ("o:tag", "reminder"))

    _, by_id = _events(server, **{"message-id": second["id"]})
    _, by_tag = _events(server, tags="invoice")
    _, old = _events(server, begin="0", end="1000")

    assert [i["message"]["headers"]["message-id"] for i in by_id["items"]] == [
        second["id"].strip("<>")
    ]
    assert [i["message"]["headers"]["message-id"] for i in by_tag["items"]] == [
        first["id"].strip("<>")
    ]
    assert old["items"] == []


def test_a_stored_template_is_answered_with_its_active_version(server):
    server.put_template("invoice_new", "Hello {{customer_name}}", tag="v2")

    with requests.get(
        f"{server.api_url}/{DOMAIN}/templates/invoice_new",
        params={"active": "yes"},
        auth=("api", API_KEY),
        timeout=10,
    ) as response:
        active = response.json()
    with requests.get(
        f"{server.api_url}/{DOMAIN}/templates/invoice_gone", auth=("api", API_KEY), timeout=10
    ) as missing:
        assert missing.status_code == 404

    assert active["template"]["name"] == "invoice_new"
    assert active["template"]["version"]["tag"] == "v2"
    assert active["template"]["version"]["template"] == "Hello {{customer_name}}"
    assert missing.json() == {"message": "template not found"}


def test_events_log_one_accepted_event_per_recipient_including_bcc(server):
    _send(server, ("cc", "cfo@customer.example"), ("bcc", "crm@bcc.example"))

    _, page = _events(server, event="accepted", ascending="yes")

    assert [item["recipient"] for item in page["items"]] == [
        "ap@customer.example",
        "cfo@customer.example",
        "crm@bcc.example",
    ]


def test_events_filter_by_recipient_and_event_and_page_with_limit(server):
    for n in range(3):
        _send(server, ("v:n", str(n)))
    server.record_event(
        {"event": "delivered", "timestamp": 0.0, "recipient": "ap@customer.example"}
    )

    _, first = _events(server, event="accepted", recipient="ap@customer.example", limit="2")
    with requests.get(first["paging"]["next"], auth=("api", API_KEY), timeout=10) as response:
        second = response.json()
    with requests.get(second["paging"]["next"], auth=("api", API_KEY), timeout=10) as response:
        third = response.json()

    assert [item["user-variables"]["n"] for item in first["items"]] == ["2", "1"]
    assert [item["user-variables"]["n"] for item in second["items"]] == ["0"]
    assert third["items"] == []


def test_events_reject_an_unknown_filter_instead_of_ignoring_it(server):
    status, body = _events(server, **{"user-variable": json.dumps({"delivery_id": "1"})})

    assert status == 400
    assert "user-variable" in body["message"]


def test_events_require_the_api_key(server):
    status, _ = _call(server, "GET", f"/{DOMAIN}/events", api_key="key-wrong")

    assert status == 401


def test_multipart_attachments_arrive_byte_for_byte_with_their_names(server):
    awkward = bytes(range(256)) * 4 + b"\r\n--boundary\r\n\r\r\n\n"

    response = requests.post(
        f"{server.api_url}/{DOMAIN}/messages",
        auth=("api", API_KEY),
        data={
            "from": f"billing@{DOMAIN}",
            "to": "ap@customer.example",
            "template": "invoice_new",
            "t:variables": json.dumps({"amount": "$1,234.50"}),
        },
        files=[
            ("attachment", ('Facture "1" é.pdf', awkward, "application/pdf")),
            ("attachment", ("notes.txt", b"line\r\n", "text/plain")),
        ],
        timeout=10,
    )

    assert response.status_code == 200
    [message] = server.messages
    assert [(a.filename, a.content_type) for a in message.attachments] == [
        ('Facture "1" é.pdf', "application/pdf"),
        ("notes.txt", "text/plain"),
    ]
    assert message.attachments[0].content == awkward
    assert message.attachments[1].content == b"line\r\n"
    assert message.template == "invoice_new"
    assert message.template_variables == {"amount": "$1,234.50"}


def test_template_variables_that_are_not_a_json_object_are_refused(server):
    status, body = _send(server, ("template", "invoice_new"), ("t:variables", "amount=12"))

    assert status == 400
    assert "t:variables" in body["message"]


def test_signed_tracking_payload_carries_mailguns_hmac_of_timestamp_and_token():
    payload = signed_tracking_payload(
        SIGNING_KEY,
        event="failed",
        message_id="<20250101000000.abc@mg.example.com>",
        recipient="ap@customer.example",
        event_id="evt-1",
        timestamp=1_700_000_000.25,
        signed_at=1_700_000_000.25,
    )

    signature = payload["signature"]
    assert signature["timestamp"] == "1700000000"
    assert len(signature["token"]) == 50
    assert signature["signature"] == tracking_signature(
        SIGNING_KEY, "1700000000", signature["token"]
    )
    assert signature["signature"] != tracking_signature(
        "other-key", "1700000000", signature["token"]
    )
    assert payload["event-data"]["message"]["headers"]["message-id"] == (
        "20250101000000.abc@mg.example.com"
    )
    assert payload["event-data"]["severity"] == "permanent"


def test_the_same_event_id_gives_the_same_token_and_different_ids_differ():
    def token(event_id: str) -> str:
        payload = signed_tracking_payload(
            SIGNING_KEY, message_id="<m@d>", recipient="a@b.example", event_id=event_id
        )
        return payload["signature"]["token"]

    assert token("evt-1") == token("evt-1")
    assert token("evt-1") != token("evt-2")


def test_tracking_payload_for_a_sent_message_carries_its_user_variables(server):
    _, sent = _send(server, ("v:delivery_id", "55"), ("o:tag", "invoice"))

    payload = server.tracking_payload("opened")

    data = payload["event-data"]
    assert data["user-variables"] == {"delivery_id": "55"}
    assert data["tags"] == ["invoice"]
    assert data["message"]["headers"]["message-id"] == sent["id"].strip("<>")
    _, page = _events(server, event="opened")
    assert [item["id"] for item in page["items"]] == [data["id"]]


def test_stop_wakes_a_delayed_answer_and_leaves_no_thread_or_socket():
    before = set(threading.enumerate())
    server = MailgunServer(domain=DOMAIN, api_key=API_KEY)
    server.start()
    port = server.port
    server.fail_next(1, status=503, delay=30.0)
    client = threading.Thread(target=_send, args=(server,))
    client.start()
    while server.attempts == 0:
        threading.Event().wait(0.01)

    server.stop()
    client.join(timeout=5)

    assert not client.is_alive()
    assert set(threading.enumerate()) == before
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v3/{DOMAIN}/events", timeout=2)
