"""The board as an operator sees it in headless Chromium: run checks, try a blocked move."""

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from cohorts import checklist
from cohorts.models import Cohort
from cohorts.permissions import AUDITOR_GROUP, OPERATOR_GROUP, groups_setup
from tests import factories

from .conftest import CYCLE_END, CYCLE_START, PASSWORD, clean_cycle, cohort_with_members, pass_items
from .factories import DriftRecordFactory, ReconciliationRunFactory


@pytest.fixture
def artefacts() -> Path:
    path = Path(os.environ.get("TEST_ARTEFACTS_DIR", "var/test-artefacts")) / "cohorts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _logged_in(browser, live_server, username: str, group: str):
    """A browser page logged in to the admin as a new staff user of `group`."""
    groups_setup()
    user = get_user_model().objects.create_user(
        username, f"{username}@adventive.com", PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    return page


def _board_data():
    migrated = cohort_with_members(
        1,
        members=4,
        name="Flat-only",
        status="migrated",
        cycle_start=CYCLE_START,
        cycle_end=CYCLE_END,
    )
    pass_items(migrated, checklist.POST)
    clean_cycle(migrated)
    running = cohort_with_members(
        2,
        members=6,
        name="Flat + tiered impressions",
        pricing_model=Cohort.PricingModel.FLAT_TIERED,
        status="parallel_run",
        cycle_start=CYCLE_START,
        cycle_end=CYCLE_END,
    )
    clean_cycle(running, skip=CYCLE_START.replace(day=14))
    ReconciliationRunFactory(run_date=CYCLE_START.replace(day=14), cohort_number=2, status="drift")
    DriftRecordFactory(account=running.accounts.first())
    pass_items(running, checklist.POST, skip="zero_drift")
    planned = cohort_with_members(
        3, members=3, name="Custom / managed services", pricing_model=Cohort.PricingModel.CUSTOM
    )
    return migrated, running, planned


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_operator_runs_checks_and_reads_the_refusal_of_a_blocked_move(
    live_server, browser, artefacts, monkeypatch, stripe
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    _, _, planned = _board_data()
    factories.InvoiceDeliveryFactory(account=planned.accounts.first(), state="failed")
    page = _logged_in(browser, live_server, "jeffrey", OPERATOR_GROUP)
    page.goto(f"{live_server.url}/admin/cohorts/cohort/board/")
    page.screenshot(path=str(artefacts / "board.png"), full_page=True)
    cards = page.locator("#cohort-board section.coh-card")
    assert cards.count() == 3
    assert page.inner_text("#board-summary").startswith("1 of 3 cohorts migrated · 1 blocked")
    card_1, card_2, card_3 = (page.locator(f"#cohort-{n}") for n in (1, 2, 3))
    assert "Migrated" in card_1.inner_text()
    text_2 = card_2.inner_text()
    assert "Parallel run" in text_2 and "Blocked: 1 open drift" in text_2
    assert "30/31" in text_2  # days clean
    assert "1\nFAILED DELIVERIES" in card_3.inner_text().upper()

    card_3.locator("input[value='Run checks']").click()
    page.wait_for_load_state()
    message = page.locator("ul.messagelist").inner_text()
    assert "Cohort 3: 8 checks run" in message
    assert "Blocked: " in page.locator("#cohort-3 .coh-headline").inner_text()
    page.screenshot(path=str(artefacts / "board-after-checks.png"), full_page=True)

    page.locator("#cohort-3 input[value='Mark ready']").click()
    page.wait_for_load_state()
    refusal = page.locator("ul.messagelist li.error").inner_text()
    assert "Cohort 3 cannot move to Ready." in refusal
    assert "Stripe subscription for each member: failed" in refusal
    assert "Rollback plan confirmed (manual): not recorded yet" in refusal
    assert "no signed manual review" in refusal
    page.screenshot(path=str(artefacts / "board-refusal.png"), full_page=True)
    assert Cohort.objects.get(number=3).status == "planned"

    page.click("#cohort-3 a.more")
    page.wait_for_load_state()
    assert "Pre-cohort checklist" in page.inner_text("body")
    page.screenshot(path=str(artefacts / "cohort-3.png"), full_page=True)
    for name in ("board.png", "board-after-checks.png", "board-refusal.png", "cohort-3.png"):
        assert (artefacts / name).stat().st_size > 10_000


@pytest.mark.django_db(transaction=True, databases=["default", "legacy"])
def test_an_auditor_sees_the_board_and_a_cohort_without_any_action(
    live_server, browser, artefacts, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    _, running, _ = _board_data()
    page = _logged_in(browser, live_server, "auditor", AUDITOR_GROUP)
    page.goto(f"{live_server.url}/admin/cohorts/cohort/board/")
    page.screenshot(path=str(artefacts / "board-auditor.png"), full_page=True)
    assert page.locator("#cohort-board section.coh-card").count() == 3
    assert page.locator("#cohort-board input[type=submit]").count() == 0
    page.click("#cohort-2 a.more")
    page.wait_for_load_state()
    assert "Post-cycle checklist" in page.inner_text("body")
    assert page.locator("#content-main input[type=submit]").count() == 0
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{live_server.url}/admin/cohorts/cohort/{running.pk}/act/run-checks/",
        headers={"X-CSRFToken": token, "Referer": live_server.url},
    )
    assert response.status == 403
    assert "CSRF" not in response.text()  # refused for the permission, not the token
