"""Meter events Stripe accepts and refuses later: its thin error report reaches our event
destination, is verified, read from Stripe and puts the named revisions back to an operator."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe as stripe_lib
from django.conf import settings

from billing_project.errors import BillingError
from billing_project.models import Alert
from metering.usage_models import MeterErrorReport, UsageRevision
from metering.usage_outbox import usage_outbox_send, usage_revision_retry
from metering.usage_services import UsageItem, usage_record_batch
from tests.factories import BillingAccountFactory
from tests.metering.usage_helpers import recent_day, stripe_customer_for, stripe_meters

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]
State = UsageRevision.State


@pytest.fixture
def relay():
    """Where Stripe's server delivers thin notifications: kept as sent (body and headers), to
    be posted to the app exactly as signed."""
    received: list[tuple[bytes, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                (self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers))
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/stripe/events/", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def destination(stripe, relay, settings):
    url, received = relay
    stripe.meter_error_report_delay = None  # reported when the test flushes
    client = stripe_lib.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses={"api": stripe.url})
    created = client.v2.core.event_destinations.create(
        {
            "name": "meter errors",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": [
                "v1.billing.meter.error_report_triggered",
                "v1.billing.meter.no_meter_found",
            ],
            "webhook_endpoint": {"url": url},
            "include": ["webhook_endpoint.signing_secret"],
        }
    )
    settings.STRIPE_EVENT_DESTINATION_SECRET = created.webhook_endpoint.signing_secret
    return received


def deliver(client, received, django_capture_on_commit_callbacks):
    responses = []
    for body, headers in received:
        with django_capture_on_commit_callbacks(execute=True):
            responses.append(
                client.post(
                    "/stripe/events/",
                    data=body,
                    content_type="application/json",
                    HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
                )
            )
    return responses


def test_usage_for_an_unknown_customer_is_accepted_then_put_back_with_stripes_reason(
    stripe, destination, client, django_capture_on_commit_callbacks
):
    stripe_meters()
    account = BillingAccountFactory(acct_id=8801, stripe_customer_id="cus_NotInStripe")
    usage_record_batch(items=[UsageItem(0, 8801, recent_day(1), "ST", 2_500)])
    assert usage_outbox_send(workers=1).sent == 1  # Stripe answered 200
    revision = UsageRevision.objects.get()
    assert revision.state == State.SENT

    stripe.flush_meter_errors()
    responses = deliver(client, destination, django_capture_on_commit_callbacks)
    assert [r.status_code for r in responses] == [200]

    revision.refresh_from_db()
    assert revision.state == State.FAILED
    assert revision.stripe_error_code == "meter_event_customer_not_found"
    assert "after accepting it" in revision.last_error
    report = MeterErrorReport.objects.get()
    assert (report.state, report.error_count, report.revisions_refused) == ("applied", 1, 1)
    alert = Alert.objects.get(route=Alert.Route.BILLING)
    assert revision.identifier in alert.body
    with pytest.raises(BillingError, match="post the usage again as a correction"):
        usage_revision_retry(revision_id=revision.pk)
    assert account.pk


def test_the_same_notification_twice_is_applied_once_and_a_forged_one_is_refused(
    stripe, destination, client, django_capture_on_commit_callbacks
):
    stripe_meters()
    BillingAccountFactory(acct_id=8802, stripe_customer_id="cus_AlsoMissing")
    usage_record_batch(items=[UsageItem(0, 8802, recent_day(1), "RM", 10)])
    usage_outbox_send(workers=1)
    stripe.flush_meter_errors()
    (body, headers) = destination[0]
    deliver(client, [(body, headers), (body, headers)], django_capture_on_commit_callbacks)
    assert MeterErrorReport.objects.count() == 1
    assert Alert.objects.filter(route=Alert.Route.BILLING).count() == 1
    forged = client.post(
        "/stripe/events/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"].replace("v1=", "v1=00"),
    )
    assert forged.status_code == 400
    assert settings.STRIPE_EVENT_DESTINATION_SECRET.startswith("whsec_")


def test_an_event_name_no_meter_has_is_accepted_then_failed_by_the_no_meter_report(
    stripe, destination, client, django_capture_on_commit_callbacks
):
    account = BillingAccountFactory(acct_id=8803, stripe_customer_id=None)
    stripe_customer_for(account)  # a real customer, but no meters exist
    usage_record_batch(items=[UsageItem(0, 8803, recent_day(1), "CV", 3)])
    assert usage_outbox_send(workers=1).sent == 1
    stripe.flush_meter_errors()
    deliver(client, destination, django_capture_on_commit_callbacks)
    revision = UsageRevision.objects.get()
    assert (revision.state, revision.stripe_error_code) == (State.FAILED, "no_meter")
