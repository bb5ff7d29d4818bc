"""The webhook task carries an invoice from Stripe's event to the customer's inbox."""

import pytest
from django_q.conf import Conf
from django_q.models import OrmQ
from djstripe.models import WebhookEventTrigger

from billing_project.webhook_intake import webhook_trigger_process
from invoices.models import InvoiceDelivery
from tests.fixtures.stripe import sign_event
from tests.invoices.scenarios import billed_customer, finalized_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_webhook_task_delivers_without_a_second_trip_through_the_queue(
    client, server, endpoint_url, s3_bucket, mailgun, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", False)
    _, customer = billed_customer()
    event = finalized_event(server, customer.id)
    payload, headers = sign_event(event)
    response = client.post(endpoint_url, data=payload, content_type="application/json", **headers)
    assert response.status_code == 200
    assert not InvoiceDelivery.objects.exists()
    assert OrmQ.objects.count() == 1  # the webhook's own task

    OrmQ.objects.all().delete()
    webhook_trigger_process(trigger_id=WebhookEventTrigger.objects.get().pk)

    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    assert delivery.state == InvoiceDelivery.State.SENT
    assert len(mailgun.messages) == 1
    # Only dj-stripe's mirror of the event waits in the queue; the delivery did not.
    assert [task.func() for task in OrmQ.objects.all()] == [
        "billing_project.tasks.stripe_mirror_update_task"
    ]
