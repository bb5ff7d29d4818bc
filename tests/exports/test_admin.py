import io
import re
from datetime import UTC, date, datetime

import pytest
import requests
import time_machine
from django.urls import reverse
from openpyxl import load_workbook

from exports.history import history_export
from exports.models import ExportRun, HistoryMonth

from .conftest import LEGACY_DB

pytestmark = LEGACY_DB


def test_runs_changelist_and_run_page_show_status_and_presigned_links_that_download(
    admin_client, legacy_history, django_assert_max_num_queries
):
    history_export()
    run = ExportRun.objects.get()

    with django_assert_max_num_queries(12):
        changelist = admin_client.get(reverse("admin:exports_exportrun_changelist"))
    page = admin_client.get(reverse("admin:exports_exportrun_change", args=[run.pk]))

    assert changelist.status_code == 200 and "Succeeded" in changelist.text
    assert "Month-end report" in changelist.text
    assert page.status_code == 200
    link = page.text.split('href="')
    urls = [
        part.split('"')[0].replace("&amp;", "&")
        for part in link
        if "X-Amz-Signature" in part.split('"')[0]
    ]
    assert len(urls) == 4
    response = requests.get(urls[0], timeout=10)
    assert response.status_code == 200 and response.content[:2] == b"\x1f\x8b"


def test_history_months_page_and_verify_action(admin_client, legacy_history):
    history_export()
    HistoryMonth.objects.update(verified_at=None)

    response = admin_client.post(
        reverse("admin:exports_historymonth_changelist"),
        {
            "action": "verify_months",
            "_selected_action": list(HistoryMonth.objects.values_list("pk", flat=True)),
        },
        follow=True,
    )

    assert "4 of 4 files verified" in response.text
    assert HistoryMonth.objects.filter(verified_at__isnull=True).count() == 0
    assert admin_client.get(reverse("admin:exports_legacypdfcopy_changelist")).status_code == 200


@pytest.mark.calendar
def test_month_end_form_offers_the_24_months_before_this_one_newest_first(admin_client):
    today = date.today()
    this_month = today.year * 12 + today.month - 1
    offered = [
        f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(this_month - 1, this_month - 25, -1)
    ]

    form = admin_client.get(reverse("admin:exports_month_end_report"))

    assert form.status_code == 200
    values = re.findall(r'<option value="(\d{4}-\d{2})"', form.text)
    assert values == offered
    assert f"{today:%Y-%m}" not in values  # the running month has no report yet


# The legacy history is fixed (2025-11..2026-02), so the form is opened on a fixed day within
# the 24 months it offers.
@time_machine.travel(datetime(2026, 3, 10, 12, tzinfo=UTC), tick=True)
def test_month_end_report_downloads_for_a_chosen_month(admin_client, legacy_history):
    url = reverse("admin:exports_month_end_report")
    form = admin_client.get(url)

    assert form.status_code == 200 and "2026-02" in form.text
    response = admin_client.post(url, {"month": "2026-02", "format": "xlsx"})

    assert response.status_code == 200, response.text[:500]
    assert response["Content-Disposition"] == 'attachment; filename="month-end-2026-02.xlsx"'
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet["A1"].value == "Account id" and sheet["B8"].value == "Total"
    assert sheet["A10"].value == "Stripe totals not included."
