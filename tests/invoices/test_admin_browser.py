"""The deliveries admin as an operator sees it, in headless Chromium."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import sync_playwright

from tests.factories import DeliveryEventFactory, EmailAttemptFactory, InvoiceDeliveryFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.django_db(transaction=True)
def test_operator_sees_delivery_states_and_a_timeline(live_server, browser, tmp_path, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are still
    # plain synchronous test set-up.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    get_user_model().objects.create_superuser("operator", "ops@adventive.com", "correct-horse-9")
    sent = InvoiceDeliveryFactory(sent=True, number="7FE1103-0004", total_minor=53_900)
    DeliveryEventFactory(delivery=sent, step="email_sent", message="accepted by Mailgun")
    EmailAttemptFactory(delivery=sent)
    InvoiceDeliveryFactory(state="failed", number="7FE1103-0005", last_error="Mailgun: 500")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "correct-horse-9")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/invoices/invoicedelivery/")
    page.screenshot(path=str(tmp_path / "deliveries.png"))
    table = page.inner_text("#result_list")
    assert "7FE1103-0004" in table
    assert "$539.00" in table
    assert "Sent" in table
    assert "Failed" in table
    page.click("text=7FE1103-0004")
    page.screenshot(path=str(tmp_path / "delivery.png"), full_page=True)
    assert "accepted by Mailgun" in page.inner_text("body")
    assert (tmp_path / "deliveries.png").stat().st_size > 10_000
