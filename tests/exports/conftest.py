"""Legacy data for export tests: the demo's legacy builder, on a fixed date."""

from datetime import date

import pytest
from django.conf import settings

from billing_project.demo import DemoContext
from reconciliation.demo import legacy_demo_build, legacy_demo_write
from reconciliation.legacy import LegacyInvoice

LEGACY_DB = pytest.mark.django_db(databases=["default", "legacy"])
TODAY = date(2026, 3, 10)


def legacy_load(*, accounts: int = 6, months: int = 4, seed: int = 7):
    data = legacy_demo_build(DemoContext(seed=seed, accounts=accounts, months=months, today=TODAY))
    legacy_demo_write(data)
    return data


@pytest.fixture
def legacy_history(s3_bucket):
    """Six accounts, four months (2025-11..2026-02) of legacy invoices, an empty bucket."""
    return legacy_load()


def bucket_keys(client) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=settings.R2_INVOICE_BUCKET)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def bucket_get(client, key: str) -> bytes:
    return client.get_object(Bucket=settings.R2_INVOICE_BUCKET, Key=key)["Body"].read()


def bucket_put(client, key: str, body: bytes) -> None:
    client.put_object(Bucket=settings.R2_INVOICE_BUCKET, Key=key, Body=body)


def db_month_totals(month: date) -> tuple[int, int]:
    """(invoice count, sum of totals in minor units) from the legacy models, one by one."""
    invoices = list(LegacyInvoice.objects.filter(service_month=month))
    return len(invoices), sum(invoice.total_minor for invoice in invoices)


PDF_SOURCE_BUCKET = "legacy-pdfs-test"


def fake_pdf(acct_id: int, inv_uuid: str) -> bytes:
    """Bytes standing in for a legacy PDF, distinct per invoice."""
    return b"%PDF-1.4\n% legacy invoice " + f"{acct_id}/{inv_uuid}".encode() + b"\n%%EOF\n"


@pytest.fixture
def s3_pdf_source(s3_server, monkeypatch):
    """The old S3 bucket (on the same SeaweedFS), emptied, with LEGACY_PDF_SOURCE pointing at
    its `cdn/` prefix. Returns a function storing one PDF there."""
    import os

    s3_server.create_bucket(PDF_SOURCE_BUCKET)
    client = s3_server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=PDF_SOURCE_BUCKET)
    for page in pages:
        for item in page.get("Contents", []):
            client.delete_object(Bucket=PDF_SOURCE_BUCKET, Key=item["Key"])
    monkeypatch.setenv("LEGACY_PDF_SOURCE", f"s3://{PDF_SOURCE_BUCKET}/cdn")
    monkeypatch.setenv("LEGACY_PDF_S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("LEGACY_PDF_S3_REGION", "auto")
    monkeypatch.setenv("LEGACY_PDF_S3_ACCESS_KEY_ID", os.environ["R2_ACCESS_KEY_ID"])
    monkeypatch.setenv("LEGACY_PDF_S3_SECRET_ACCESS_KEY", os.environ["R2_SECRET_ACCESS_KEY"])

    def put(acct_id: int, inv_uuid: str, body: bytes | None = None) -> None:
        client.put_object(
            Bucket=PDF_SOURCE_BUCKET,
            Key=f"cdn/{acct_id}/{inv_uuid}.pdf",
            Body=body or fake_pdf(acct_id, inv_uuid),
        )

    return put


@pytest.fixture(autouse=True)
def reports_output_dir(settings, tmp_path):
    """`month_end_report --output` writes only inside REPORTS_OUTPUT_DIR: here, the test's own
    temporary folder."""
    settings.REPORTS_OUTPUT_DIR = tmp_path
    return tmp_path
