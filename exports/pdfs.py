"""Legacy invoice PDFs from the old storage into R2 at `{acct_id}/{inv_uuid}.pdf`.

Nothing already in R2 is overwritten: a PDF found there is recorded as present with its
checksum. Each copy is checked by reading it back. A PDF the source does not have is recorded
as missing and listed (and looked for again on the next run). The state is one
`LegacyPdfCopy` row per invoice, so a run resumes where the last one stopped; the manifest
`legacy-pdfs/manifest.json` is rendered from those rows.
"""

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from botocore.exceptions import BotoCoreError, ClientError
from django.utils import timezone

from billing_project.errors import ExternalServiceError
from reconciliation.legacy import LegacyInvoice

from .history_rows import month_after
from .manifests import Manifest
from .models import ExportRun, LegacyPdfCopy
from .objects import export_storage, object_digest, object_put_new
from .progress import Progress
from .runs import export_run_file, export_run_finish, export_run_start
from .sources import PdfSource, pdf_path, pdf_source_from_env

PDF_MANIFEST_KEY = "legacy-pdfs/manifest.json"
DONE = (LegacyPdfCopy.Status.COPIED, LegacyPdfCopy.Status.PRESENT)


@dataclass
class PdfCopyOutcome:
    run: ExportRun | None = None
    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: int = 0
    planned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.copied)} PDFs copied, {len(self.present)} already in R2, "
            f"{self.skipped} done before, {len(self.missing)} missing at the source"
        )
        if self.planned:
            text += f"; {len(self.planned)} would be copied"
        if self.problems:
            text += f"; {len(self.problems)} errors"
        return text


def _record(*, inv_uuid: str, acct_id: int, key: str, status: str, **fields) -> None:
    LegacyPdfCopy.objects.update_or_create(
        inv_uuid=inv_uuid,
        defaults={
            "acct_id": acct_id,
            "key": key,
            "status": status,
            "checked_at": timezone.now(),
            **fields,
        },
    )


def _copy_one(*, inv_uuid: str, acct_id: int, source: PdfSource, outcome: PdfCopyOutcome) -> None:
    key = pdf_path(acct_id, inv_uuid)
    if export_storage().exists(key):
        stored = object_digest(key)
        _record(
            inv_uuid=inv_uuid,
            acct_id=acct_id,
            key=key,
            status=LegacyPdfCopy.Status.PRESENT,
            sha256=stored.sha256,
            bytes=stored.bytes,
            source="",
        )
        outcome.present.append(key)
        return
    body = source.fetch(key)
    if body is None:
        _record(
            inv_uuid=inv_uuid,
            acct_id=acct_id,
            key=key,
            status=LegacyPdfCopy.Status.MISSING,
            source=source.describe(key),
        )
        outcome.missing.append(source.describe(key))
        return
    sha256 = hashlib.sha256(body).hexdigest()
    object_put_new(key, io.BytesIO(body))
    stored = object_digest(key)
    if stored is None or stored.sha256 != sha256:
        outcome.problems.append(f"{key}: stored copy differs from the source's bytes")
        return
    _record(
        inv_uuid=inv_uuid,
        acct_id=acct_id,
        key=key,
        status=LegacyPdfCopy.Status.COPIED,
        sha256=sha256,
        bytes=len(body),
        source=source.describe(key),
    )
    export_run_file(
        run=outcome.run, key=key, period="", written=True, rows=0, size=len(body), sha256=sha256
    )
    outcome.copied.append(key)


def _pdf_manifest_write() -> bool:
    manifest = Manifest.load(PDF_MANIFEST_KEY, header={"layout": "{acct_id}/{inv_uuid}.pdf"})
    wanted = {
        copy.inv_uuid: {
            "key": copy.key,
            "acct_id": copy.acct_id,
            "status": copy.status,
            "sha256": copy.sha256,
            "bytes": copy.bytes,
            "source": copy.source,
        }
        for copy in LegacyPdfCopy.objects.order_by("inv_uuid").iterator(chunk_size=2000)
    }
    for inv_uuid in set(manifest.entries) - set(wanted):
        manifest.discard(inv_uuid)
    for inv_uuid, entry in wanted.items():
        manifest.set(inv_uuid, entry)
    return manifest.save()


def legacy_pdfs_copy(
    *,
    first: date | None = None,
    last: date | None = None,
    acct_ids: Iterable[int] | None = None,
    dry_run: bool = False,
    source: PdfSource | None = None,
    emit: Callable[[str], None] | None = None,
) -> PdfCopyOutcome:
    """Copy every legacy invoice PDF not yet in R2; resumable, never overwrites, lists misses."""
    invoices = LegacyInvoice.objects.order_by("service_month", "inv_uuid")
    if first:
        invoices = invoices.filter(service_month__gte=first)
    if last:
        invoices = invoices.filter(service_month__lt=month_after(last))
    if acct_ids is not None:
        invoices = invoices.filter(account_id__in=list(acct_ids))
    done = set(LegacyPdfCopy.objects.filter(status__in=DONE).values_list("inv_uuid", flat=True))
    outcome = PdfCopyOutcome()
    source = source or pdf_source_from_env()
    progress = Progress(total=invoices.count(), unit="invoices", emit=emit)
    if not dry_run:
        outcome.run = export_run_start(
            kind=ExportRun.Kind.PDFS,
            range_from=f"{first:%Y-%m}" if first else "",
            range_to=f"{last:%Y-%m}" if last else "",
            options={"acct_ids": sorted(acct_ids)} if acct_ids is not None else {},
        )
    try:
        for inv_uuid, acct_id in invoices.values_list("inv_uuid", "account_id").iterator(
            chunk_size=2000
        ):
            progress.advance()
            if inv_uuid in done:
                outcome.skipped += 1
            elif dry_run:
                outcome.planned.append(pdf_path(acct_id, inv_uuid))
            else:
                try:
                    _copy_one(inv_uuid=inv_uuid, acct_id=acct_id, source=source, outcome=outcome)
                except (ExternalServiceError, BotoCoreError, ClientError, OSError) as exc:
                    # One unreadable object must not stop the rest; the next run retries it.
                    outcome.problems.append(f"{pdf_path(acct_id, inv_uuid)}: {exc}")
        if not dry_run:
            _pdf_manifest_write()
    except BaseException as exc:
        if outcome.run is not None:
            export_run_finish(run=outcome.run, error=f"{type(exc).__name__}: {exc}")
        raise
    if outcome.run is not None:
        listed = [f"missing at source: {where}" for where in outcome.missing]
        export_run_finish(
            run=outcome.run, problems=listed + outcome.problems, summary=outcome.summary()
        )
    return outcome
