import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from exports.models import ExportRun, LegacyPdfCopy
from exports.pdfs import legacy_pdfs_copy
from reconciliation.legacy import LegacyInvoice

from .conftest import LEGACY_DB, bucket_get, bucket_keys, bucket_put, fake_pdf

pytestmark = LEGACY_DB


def _invoices() -> list[tuple[int, str]]:
    return list(
        LegacyInvoice.objects.order_by("service_month", "inv_uuid").values_list(
            "account_id", "inv_uuid"
        )
    )


def test_pdfs_are_copied_checksummed_and_the_one_missing_at_source_is_listed(
    legacy_history, s3_bucket, s3_pdf_source
):
    invoices = _invoices()
    absent = invoices[5]
    for acct_id, inv_uuid in invoices:
        if (acct_id, inv_uuid) != absent:
            s3_pdf_source(acct_id, inv_uuid)
    out = io.StringIO()

    call_command("copy_legacy_pdfs", stdout=out)

    pdf_keys = [key for key in bucket_keys(s3_bucket) if key.endswith(".pdf")]
    assert len(pdf_keys) == len(invoices) - 1
    acct_id, inv_uuid = invoices[0]
    assert bucket_get(s3_bucket, f"{acct_id}/{inv_uuid}.pdf") == fake_pdf(acct_id, inv_uuid)
    missing_where = f"s3://legacy-pdfs-test/cdn/{absent[0]}/{absent[1]}.pdf"
    assert f"MISSING at source: {missing_where}" in out.getvalue()
    assert "1 missing at the source" in out.getvalue()
    missing = LegacyPdfCopy.objects.get(status=LegacyPdfCopy.Status.MISSING)
    assert (missing.acct_id, missing.inv_uuid) == absent
    manifest = json.loads(bucket_get(s3_bucket, "legacy-pdfs/manifest.json"))["entries"]
    assert manifest[inv_uuid]["sha256"] == hashlib.sha256(fake_pdf(acct_id, inv_uuid)).hexdigest()
    assert manifest[absent[1]]["status"] == "missing"
    run = ExportRun.objects.get(kind=ExportRun.Kind.PDFS)
    assert run.status == ExportRun.Status.PROBLEMS
    assert run.problems == [f"missing at source: {missing_where}"]


def test_a_rerun_copies_nothing_twice_and_picks_up_a_pdf_that_appeared(
    legacy_history, s3_bucket, s3_pdf_source
):
    invoices = _invoices()
    for acct_id, inv_uuid in invoices[1:]:
        s3_pdf_source(acct_id, inv_uuid)
    first = legacy_pdfs_copy()
    stamps = {
        key: s3_bucket.head_object(Bucket="invoices-test", Key=key)["LastModified"]
        for key in first.copied
    }

    again = legacy_pdfs_copy()
    s3_pdf_source(*invoices[0])
    third = legacy_pdfs_copy()

    assert len(first.copied) == len(invoices) - 1 and len(first.missing) == 1
    assert again.copied == [] and again.skipped == len(invoices) - 1 and len(again.missing) == 1
    assert third.copied == [f"{invoices[0][0]}/{invoices[0][1]}.pdf"] and third.missing == []
    assert {
        key: s3_bucket.head_object(Bucket="invoices-test", Key=key)["LastModified"]
        for key in first.copied
    } == stamps


def test_a_pdf_already_in_r2_is_never_overwritten(legacy_history, s3_bucket, s3_pdf_source):
    acct_id, inv_uuid = _invoices()[0]
    s3_pdf_source(acct_id, inv_uuid)
    bucket_put(s3_bucket, f"{acct_id}/{inv_uuid}.pdf", b"%PDF already here")

    outcome = legacy_pdfs_copy(acct_ids=[acct_id])

    assert bucket_get(s3_bucket, f"{acct_id}/{inv_uuid}.pdf") == b"%PDF already here"
    assert f"{acct_id}/{inv_uuid}.pdf" in outcome.present
    copy = LegacyPdfCopy.objects.get(inv_uuid=inv_uuid)
    assert copy.status == LegacyPdfCopy.Status.PRESENT
    assert copy.sha256 == hashlib.sha256(b"%PDF already here").hexdigest()


class _CdnHandler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_cdn(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CdnHandler)
    _CdnHandler.files = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_port}/billing"
    monkeypatch.setenv("LEGACY_PDF_SOURCE", base_url)
    yield _CdnHandler.files, base_url
    server.shutdown()
    server.server_close()


def test_pdfs_are_copied_from_an_http_base_url(legacy_history, s3_bucket, http_cdn):
    files, base_url = http_cdn
    invoices = [row for row in _invoices() if row[0] == 1001]
    for acct_id, inv_uuid in invoices[:-1]:
        files[f"/billing/{acct_id}/{inv_uuid}.pdf"] = fake_pdf(acct_id, inv_uuid)

    outcome = legacy_pdfs_copy(acct_ids=[1001])

    assert len(outcome.copied) == len(invoices) - 1
    acct_id, inv_uuid = invoices[-1]
    assert outcome.missing == [f"{base_url}/{acct_id}/{inv_uuid}.pdf"]
    assert bucket_get(s3_bucket, f"{invoices[0][0]}/{invoices[0][1]}.pdf") == fake_pdf(*invoices[0])


def test_copy_refuses_an_unusable_source_naming_the_variable(legacy_history, monkeypatch):
    monkeypatch.setenv("LEGACY_PDF_SOURCE", "ftp://old-host/pdfs")

    with pytest.raises(CommandError, match="LEGACY_PDF_SOURCE: 'ftp://old-host/pdfs' is neither"):
        call_command("copy_legacy_pdfs", stdout=io.StringIO())
    assert not LegacyPdfCopy.objects.exists()
