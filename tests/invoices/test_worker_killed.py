"""A worker process SIGKILLed while its email is with Mailgun still gives exactly one email.

The delivery runs in a real process against the test database; Mailgun (the compatible server)
holds the send request while the test kills the process: before Mailgun queued the message,
after it queued it, and while it answers 502 after queuing it. The sweeper then resumes the
delivery once the dead worker's lease runs out, and asks Mailgun before anything is sent again.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import stripe
import time_machine
from django.utils import timezone

from invoices.models import EmailAttempt, InvoiceDelivery
from invoices.services import LEASE_SECONDS, delivery_record
from invoices.tasks import delivery_sweep_task
from tests.harness.qcluster import ROOT, database_url
from tests.invoices.scenarios import billed_customer, finalized_event

State = InvoiceDelivery.State
HOLD_SECONDS = 30


def _recorded_delivery(server) -> InvoiceDelivery:
    _, customer = billed_customer()
    invoice_id = finalized_event(server, customer.id)["data"]["object"]["id"]
    delivery, _ = delivery_record(
        invoice=stripe.Invoice.retrieve(invoice_id).to_dict(), event_type="invoice.finalized"
    )
    return delivery


def _worker(delivery_id: int) -> subprocess.Popen:
    code = (
        "from invoices.services import delivery_process; "
        f"delivery_process(delivery_id={delivery_id})"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url("default"),
        "LEGACY_DATABASE_URL": database_url("legacy"),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_when(process: subprocess.Popen, condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            if process.poll() is not None:
                pytest.fail(f"the worker ended (exit {process.returncode}) before {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("fault", "queued"),
    [
        pytest.param({"status": 503, "accept": False}, False, id="before-mailgun-queued-it"),
        pytest.param({"status": None}, True, id="after-mailgun-queued-it"),
        pytest.param({"status": 502, "accept": True}, True, id="while-answering-502-after-queuing"),
    ],
)
def test_worker_killed_while_mailgun_holds_the_send_gives_one_email(
    server, mailgun, s3_bucket, fault, queued
):
    delivery = _recorded_delivery(server)
    mailgun.fail_next(1, delay=HOLD_SECONDS, **fault)
    worker = _worker(delivery.pk)
    _kill_when(worker, lambda: mailgun.attempts == 1, "the send to reach Mailgun")
    assert len(mailgun.messages) == (1 if queued else 0)
    delivery.refresh_from_db()
    assert delivery.state == State.SENDING
    assert delivery.lease_until is not None  # the dead worker's lease

    killed_at = timezone.now()
    with time_machine.travel(killed_at + timedelta(seconds=LEASE_SECONDS + 30)):
        assert delivery_sweep_task() == 1  # the lease ran out: resumed
    delivery.refresh_from_db()
    if queued:
        assert delivery.state == State.SENT
        assert "found at Mailgun" in delivery.events.get(step="email_sent").message
    else:
        assert delivery.state == State.SENDING  # nothing found yet; Mailgun's log may lag
        assert mailgun.messages == []
        with time_machine.travel(killed_at + timedelta(minutes=31)):
            assert delivery_sweep_task() == 1
        delivery.refresh_from_db()
        assert delivery.state == State.SENT
    assert len(mailgun.messages) == 1
    assert delivery.mailgun_message_id == mailgun.messages[0].id
    attempt = EmailAttempt.objects.get(delivery=delivery)
    assert attempt.status == EmailAttempt.Status.SENT
    assert attempt.mailgun_message_id == mailgun.messages[0].id
