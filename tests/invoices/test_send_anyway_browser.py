"""The "send anyway" choice as an operator sees it, in headless Chromium."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import sync_playwright

from invoices.models import EmailAttempt, InvoiceDelivery
from invoices.services import delivery_process
from tests.invoices.scenarios import billed_customer, deliver, finalized_event
from tests.invoices.test_admin_browser import CHROMIUM, CHROMIUM_ARGS


@pytest.mark.django_db(transaction=True)
def test_operator_sees_why_retry_waits_and_confirms_send_anyway(
    live_server,
    client,
    server,
    mailgun,
    s3_bucket,
    endpoint_url,
    django_capture_on_commit_callbacks,
    settings,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.BILLING_DELIVERY_MAX_ATTEMPTS = 2
    _, customer = billed_customer()
    mailgun.fail_next(1, status=502, accept=True)
    event = finalized_event(server, customer.id)
    deliver(client, endpoint_url, event, django_capture_on_commit_callbacks)
    delivery = InvoiceDelivery.objects.get(stripe_invoice_id=event["data"]["object"]["id"])
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_KEY": "key-wrong"}
    delivery_process(delivery_id=delivery.pk)
    assert EmailAttempt.objects.get(delivery=delivery).status == EmailAttempt.Status.PARKED

    get_user_model().objects.create_superuser("operator", "ops@adventive.com", "correct-horse-9")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            _operator_retries_then_opens_send_anyway(browser, live_server, tmp_path)
        finally:
            browser.close()
    assert mailgun.attempts == 1


def _operator_retries_then_opens_send_anyway(browser, live_server, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "correct-horse-9")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/invoices/invoicedelivery/")
    page.click("#result_list tbody tr a")
    page.click("text=Retry failed delivery")
    page.screenshot(path=str(tmp_path / "retry-refused.png"), full_page=True)
    assert "Mailgun cannot say whether send attempt" in page.inner_text(".messagelist")
    assert page.locator("text=Re-send email…").count() == 0  # settled by Retry or Send anyway
    page.click("text=Send anyway…")
    page.screenshot(path=str(tmp_path / "send-anyway.png"), full_page=True)
    assert "the customer gets the invoice email twice" in page.inner_text("#content-main")
    print(tmp_path)
