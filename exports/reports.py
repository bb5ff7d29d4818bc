"""Month-end report runs: build, write (a local file or an object in storage), record."""

import hashlib
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .models import ExportRun
from .month_end import MonthEndReport, month_end_report_build
from .month_end_files import month_end_file
from .objects import object_put
from .output_paths import LOCAL_PREFIX, local_file_write
from .runs import export_run_file, export_run_finish, export_run_start

REPORTS_PREFIX = "reports"


@dataclass
class ReportWritten:
    report: MonthEndReport
    where: str
    size: int
    run: ExportRun


def month_end_report_write(
    *,
    month: date,
    fmt: str,
    include_stripe: bool = True,
    output: Path | None = None,
    overwrite: bool = False,
) -> ReportWritten:
    """Write the month's report to `output`, or to `reports/month-end-YYYY-MM.<fmt>` in storage
    when no output is given; the run is recorded either way. Rewriting storage is harmless; a
    local file (confined by `exports.output_paths`) is replaced only with `overwrite`."""
    run = export_run_start(
        kind=ExportRun.Kind.REPORT,
        range_from=f"{month:%Y-%m}",
        range_to=f"{month:%Y-%m}",
        options={"format": fmt, "stripe": include_stripe},
    )
    try:
        report = month_end_report_build(month=month, include_stripe=include_stripe)
        content, name, _content_type = month_end_file(report, fmt=fmt)
        if output is not None:
            local_file_write(output, content, overwrite=overwrite)
            where = f"{LOCAL_PREFIX}{output}"
        else:
            where = f"{REPORTS_PREFIX}/{name}"
            object_put(where, io.BytesIO(content))
    except BaseException as exc:
        export_run_finish(run=run, error=f"{type(exc).__name__}: {exc}")
        raise
    export_run_file(
        run=run,
        key=where,
        period=f"{month:%Y-%m}",
        written=True,
        rows=len(report.rows),
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    summary = f"{len(report.rows)} accounts for {month:%Y-%m} written to {where}"
    export_run_finish(run=run, summary=summary)
    return ReportWritten(report=report, where=where, size=len(content), run=run)
