"""The Content-Security-Policy holds and the admin still works under it, in headless Chromium:
no page logs a violation or a console error; the board, the cohort page (its rollback asks
first), the charts and the changelist actions work."""

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import sync_playwright

from tests import factories
from tests.cohorts.conftest import CYCLE_END, CYCLE_START, cohort_with_members
from tests.cohorts.factories import ReconciliationResultFactory, ReconciliationRunFactory

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-9"


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def artefacts() -> Path:
    path = Path(os.environ.get("TEST_ARTEFACTS_DIR", "var/test-artefacts")) / "security"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_every_response_carries_the_policy(client, db):
    policy = client.get("/admin/login/")["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert directive in policy
    assert "unsafe-eval" not in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


@pytest.mark.calendar
@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_admin_pages_work_under_the_policy_without_violations(
    live_server, browser, artefacts, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    get_user_model().objects.create_superuser("root", "root@adventive.com", PASSWORD)
    cohort = cohort_with_members(
        2, members=3, status="parallel_run", cycle_start=CYCLE_START, cycle_end=CYCLE_END
    )
    account = cohort.accounts.first()
    delivery = factories.InvoiceDeliveryFactory(sent=True, account=account)
    today = date.today()
    for back in range(6):
        run = ReconciliationRunFactory(
            run_date=today - timedelta(days=back),
            cohort_number=2,
            status="drift" if back else "clean",
        )
        for member in cohort.accounts.all():
            drift = back == 1 and member == account
            ReconciliationResultFactory(
                run=run, account=member, status="drift" if drift else "clean"
            )

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []

    def on_console(msg) -> None:
        # Chromium asks for /favicon.ico on its own; the admin has none (404): not the policy.
        if msg.location.get("url", "").endswith("/favicon.ico"):
            return
        if msg.type in ("error", "warning"):
            problems.append(f"{page.url}: {msg.type}: {msg.text} {msg.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    pages = {
        "index": "/admin/",
        "board": "/admin/cohorts/cohort/board/",
        "cohort": f"/admin/cohorts/cohort/{cohort.pk}/board/",
        "runs-chart": "/admin/reconciliation/reconciliationrun/",
        "accounts": "/admin/metering/billingaccount/",
        "account": f"/admin/metering/billingaccount/{account.pk}/change/",
        "deliveries": "/admin/invoices/invoicedelivery/",
        "delivery": f"/admin/invoices/invoicedelivery/{delivery.pk}/change/",
        "month-end": "/admin/exports/exportrun/month-end/",
        "account-changes": "/admin/metering/accountchange/",
    }
    for name, path in pages.items():
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.screenshot(path=str(artefacts / f"csp-{name}.png"), full_page=True)

    # The changelist's JavaScript (static files) runs: "select all" ticks every row.
    page.goto(f"{live_server.url}/admin/metering/billingaccount/")
    page.click("#action-toggle")
    assert page.locator("input.action-select:checked").count() == 3

    # The rollback form asks first (a script file, not an inline handler); dismissing keeps it.
    page.goto(f"{live_server.url}/admin/cohorts/cohort/{cohort.pk}/board/")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.fill("textarea[name=reason]", "checking the question")
    page.click("input[value='Roll back']")
    assert asked == ["Roll cohort 2 back to legacy billing?"]
    assert page.url.endswith(f"/admin/cohorts/cohort/{cohort.pk}/board/")

    assert problems == []
