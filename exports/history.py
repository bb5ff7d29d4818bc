"""Legacy invoice history to storage: one gzip CSV per service month, a manifest per year.

`history/<year>/<year>-<month>.csv.gz` holds a whole month; `history/<year>/manifest.json`
describes each file (rows, sums, sha256, first/last invoice, export time, command version).
Subsets (an account list, a cohort) go under `history/extracts/<label>/` and never replace
a full month. Every run is resumable: a month whose stored file matches its manifest entry
and whose database content is unchanged is skipped; anything missing or different is redone.
"""

import csv
import gzip
import hashlib
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.utils import timezone

from .gzfiles import BackgroundSink, HashingSink, ReproducibleGzip
from .history_rows import COLUMNS, MonthStats, history_invoice_count, history_months
from .history_source import history_fingerprints, history_stream
from .manifests import Manifest
from .models import ExportRun, HistoryMonth
from .objects import export_storage, object_digest, object_put
from .progress import Progress
from .runs import export_run_file, export_run_finish, export_run_start

COMMAND_VERSION = "export_invoice_history/1"
HISTORY_PREFIX = "history"

Emit = Callable[[str], None]


def month_label(month: date) -> str:
    return f"{month:%Y-%m}"


def history_key(month: date, *, extract: str = "") -> str:
    folder = f"{HISTORY_PREFIX}/extracts/{extract}" if extract else f"{HISTORY_PREFIX}/{month:%Y}"
    return f"{folder}/{month_label(month)}.csv.gz"


def history_manifest_key(month: date, *, extract: str = "") -> str:
    folder = f"{HISTORY_PREFIX}/extracts/{extract}" if extract else f"{HISTORY_PREFIX}/{month:%Y}"
    return f"{folder}/manifest.json"


def _manifest_header(extract: str, acct_ids: Iterable[int] | None) -> dict:
    header = {"columns": list(COLUMNS), "money": "integer minor units of `currency`"}
    if extract:
        header["extract"] = extract
        header["acct_ids"] = sorted(acct_ids or [])
    return header


@dataclass
class HistoryOutcome:
    run: ExportRun | None = None
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: int = 0
    invoices: int = 0
    seconds: float = 0.0

    def record(
        self, *, key: str, month: date, entry: dict, written: bool, full_month: bool
    ) -> None:
        """A month in place in storage: mirrored in the database and counted in the run."""
        with transaction.atomic():
            if full_month:
                _history_month_record(month=month, key=key, entry=entry, verified=True)
            export_run_file(
                run=self.run,
                key=key,
                period=month_label(month),
                written=written,
                rows=entry["rows"],
                size=entry["bytes"],
                sha256=entry["sha256"],
            )
        (self.written if written else self.unchanged).append(key)
        self.rows += entry["rows"]
        self.invoices += entry["invoices"]


class _Manifests:
    """The year (or extract) manifests touched by a run, loaded once each."""

    def __init__(self, *, extract: str, acct_ids: Iterable[int] | None) -> None:
        self.extract = extract
        self.header = _manifest_header(extract, acct_ids)
        self._loaded: dict[str, Manifest] = {}

    def for_month(self, month: date) -> Manifest:
        key = history_manifest_key(month, extract=self.extract)
        if key not in self._loaded:
            self._loaded[key] = Manifest.load(key, header=self.header)
        return self._loaded[key]


def _history_month_record(*, month: date, key: str, entry: dict, verified: bool) -> None:
    HistoryMonth.objects.update_or_create(
        month=month,
        defaults={
            "key": key,
            "rows": entry["rows"],
            "invoices": entry["invoices"],
            "totals_minor": entry["totals_minor"],
            "sha256": entry["sha256"],
            "exported_at": entry["exported_at"],
            "verified_at": timezone.now() if verified else None,
        },
    )


class _HistoryWriter:
    """Receives each month's CSV from the stream, compresses it, stores it when it differs from
    what storage holds, checks it by reading it back, then records it in the manifest."""

    def __init__(self, *, manifests: _Manifests, outcome: HistoryOutcome, progress: Progress):
        self.manifests = manifests
        self.outcome = outcome
        self.progress = progress
        self.gz: ReproducibleGzip | None = None

    def open(self, month: date):
        self.gz = ReproducibleGzip(f"{month_label(month)}.csv")
        self.background = BackgroundSink(self.gz.content_sink)
        return self.background

    def close(self, month: date, stats: MonthStats) -> None:
        gz, self.gz = self.gz, None
        label = month_label(month)
        key = history_key(month, extract=self.manifests.extract)
        try:
            self.background.close()
            gz.close()
            sha256, size = gz.file_sink.hexdigest, gz.file_sink.size
            stored = object_digest(key)
            written = stored is None or stored.sha256 != sha256
            if written:
                object_put(key, gz.file)
        finally:
            gz.discard()
        self.progress.advance(stats.invoices, label=label, force=True)
        check = object_digest(key)
        if check is None or check.sha256 != sha256:
            self.outcome.problems.append(f"{key}: stored bytes differ from what was written")
            return
        manifest = self.manifests.for_month(month)
        entry = manifest.get(label)
        exported_at = (
            entry["exported_at"]
            if entry and entry.get("sha256") == sha256
            else timezone.now().isoformat(timespec="seconds")
        )
        new_entry = {
            "key": key,
            **stats.as_manifest(),
            "sha256": sha256,
            "bytes": size,
            "exported_at": exported_at,
            "command_version": COMMAND_VERSION,
        }
        # The file is in place before the manifest names it: a run killed in between finds
        # the month without an entry next time and records it without writing the file again.
        manifest.set(label, new_entry)
        manifest.save()
        self.outcome.record(
            key=key,
            month=month,
            entry=new_entry,
            written=written,
            full_month=not self.manifests.extract,
        )


def _stored_matches(key: str, entry: dict) -> bool:
    stored = object_digest(key)
    return stored is not None and stored.sha256 == entry.get("sha256")


def history_export(
    *,
    first: date | None = None,
    last: date | None = None,
    acct_ids: Iterable[int] | None = None,
    extract: str = "",
    dry_run: bool = False,
    emit: Emit | None = None,
) -> HistoryOutcome:
    """Export every service month in [first, last]; resumable and byte-for-byte idempotent.

    Months whose stored file and manifest entry match the database are skipped; the others
    are streamed in one pass. With `acct_ids`, `extract` names the folder under
    `history/extracts/` the subset goes to; full-month files are never written from a subset.
    """
    if acct_ids is not None and not extract:
        raise ValueError("a subset of accounts is exported only as a named extract")
    acct_ids = sorted(set(acct_ids)) if acct_ids is not None else None
    started = time.monotonic()
    months = history_months(first=first, last=last)
    outcome = HistoryOutcome()
    if not dry_run:
        outcome.run = export_run_start(
            kind=ExportRun.Kind.HISTORY_EXTRACT if extract else ExportRun.Kind.HISTORY,
            range_from=month_label(first) if first else "",
            range_to=month_label(last) if last else "",
            options={"extract": extract, "acct_ids": acct_ids} if extract else {},
        )
    manifests = _Manifests(extract=extract, acct_ids=acct_ids)
    try:
        entries = {month: manifests.for_month(month).get(month_label(month)) for month in months}
        # Months whose stored file is the one their manifest entry describes are candidates
        # for skipping; their CSV is produced again (not compressed) to compare with it.
        intact = [
            month
            for month, entry in entries.items()
            if entry and _stored_matches(history_key(month, extract=extract), entry)
        ]
        current = history_fingerprints(months=intact, acct_ids=acct_ids)
        todo = []
        for month in months:
            key = history_key(month, extract=extract)
            entry = entries[month]
            if month in current and not current[month].differences(entry):
                if not dry_run:
                    outcome.record(
                        key=key, month=month, entry=entry, written=False, full_month=not extract
                    )
            elif dry_run:
                outcome.planned.append(key)
            else:
                todo.append(month)
        todo_invoices = history_invoice_count(months=todo, acct_ids=acct_ids)
        progress = Progress(total=todo_invoices, unit="invoices", emit=emit)
        if emit:
            emit(
                f"{len(months) - len(todo)} months up to date; {len(todo)} to export "
                f"({progress.total:,} invoices)"
            )
        if not dry_run:
            writer = _HistoryWriter(manifests=manifests, outcome=outcome, progress=progress)
            history_stream(
                months=todo, acct_ids=acct_ids, on_open=writer.open, on_close=writer.close
            )
    except BaseException as exc:
        if outcome.run is not None:
            export_run_finish(run=outcome.run, error=f"{type(exc).__name__}: {exc}")
        raise
    outcome.seconds = time.monotonic() - started
    if outcome.run is not None:
        export_run_finish(
            run=outcome.run, problems=outcome.problems, summary=history_summary(outcome)
        )
    return outcome


def history_summary(outcome: HistoryOutcome) -> str:
    rate = outcome.rows / outcome.seconds if outcome.seconds else 0
    text = (
        f"{len(outcome.written)} files written, {len(outcome.unchanged)} unchanged, "
        f"{outcome.invoices:,} invoices / {outcome.rows:,} rows in {outcome.seconds:.1f}s "
        f"({rate:,.0f} rows/s)"
    )
    if outcome.planned:
        text += f"; {len(outcome.planned)} files would be written"
    if outcome.problems:
        text += f"; {len(outcome.problems)} problems"
    return text


# --- Verification ---------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    def __init__(self, source) -> None:
        self.source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        self.sha256.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)


def _file_stats(key: str, acct_ids: set[int] | None) -> tuple[MonthStats, str, str, int]:
    """Stats of a stored file read back (optionally only some accounts' rows), its
    uncompressed sha256, its stored sha256 and size."""
    stats = MonthStats()
    with export_storage().open(key, "rb") as stored:
        raw = _HashingReader(stored)
        content = HashingSink()
        with gzip.GzipFile(fileobj=io.BufferedReader(raw, 1024 * 1024), mode="rb") as gz:
            teed = _Tee(gz, content)
            reader = csv.reader(io.TextIOWrapper(teed, encoding="utf-8", newline=""))
            header = next(reader, None)
            if header != list(COLUMNS):
                raise ValueError(f"unexpected header {header!r}")
            current = None
            for row in reader:
                if acct_ids is not None and int(row[1]) not in acct_ids:
                    continue
                stats.rows += 1
                if row[0] != current:
                    current = row[0]
                    stats.add_invoice(row[0], row[5], int(row[6]))
                if row[9]:
                    stats.add_line(row[5], int(row[14]))
            while raw.read(1024 * 1024):  # hash any bytes after the gzip stream too
                pass
    return stats, content.hexdigest, raw.sha256.hexdigest(), raw.size


class _Tee(io.RawIOBase):
    """Reads from `source`, copying every byte read into `sink` (to hash the content)."""

    def __init__(self, source, sink: HashingSink) -> None:
        self.source = source
        self.sink = sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        self.sink.write(data)
        buffer[: len(data)] = data
        return len(data)


def _month_verify(
    *,
    month: date,
    manifest: Manifest,
    db_stats: MonthStats,
    acct_ids: set[int] | None,
    problems: list[str],
) -> bool:
    label = month_label(month)
    key = history_key(month)
    entry = manifest.get(label)
    found: list[str] = []
    if entry is None:
        found.append(f"{key}: not in {manifest.key}")
    elif not export_storage().exists(key):
        found.append(f"{key}: missing from storage")
    else:
        try:
            file_stats, content_sha256, sha256, size = _file_stats(key, acct_ids)
        except (OSError, EOFError, ValueError, csv.Error) as exc:
            found.append(f"{key}: unreadable ({exc})")
        else:
            if sha256 != entry.get("sha256") or size != entry.get("bytes"):
                found.append(
                    f"{key}: sha256 {sha256} ({size} bytes) differs from the manifest's "
                    f"{entry.get('sha256')} ({entry.get('bytes')} bytes)"
                )
            if acct_ids is None:
                if content_sha256 != entry.get("content_sha256"):
                    found.append(f"{key}: content sha256 differs from the manifest")
                found += [
                    f"{key}: file vs manifest {d}"
                    for d in file_stats.differences(entry, fingerprint=False)
                ]
                changed = db_stats.differences(entry)
                if changed and all(d.startswith("content_sha256") for d in changed):
                    found.append(f"{key}: the legacy database changed since the export")
                else:
                    found += [f"{key}: database vs manifest {d}" for d in changed]
            else:
                found += [
                    f"{key}: file vs database (selected accounts) {d}"
                    for d in file_stats.differences(db_stats.as_manifest(), fingerprint=False)
                ]
    problems.extend(found)
    if acct_ids is None:
        HistoryMonth.objects.filter(month=month).update(
            verified_at=timezone.now() if not found else None
        )
    return not found


def history_verify(
    *,
    first: date | None = None,
    last: date | None = None,
    acct_ids: Iterable[int] | None = None,
    emit: Emit | None = None,
) -> HistoryOutcome:
    """Re-read every month's file from storage and check it against its manifest entry and
    the legacy database; with `acct_ids`, only those accounts' rows are compared."""
    selected = set(acct_ids) if acct_ids is not None else None
    months = set(history_months(first=first, last=last))
    manifests = _Manifests(extract="", acct_ids=None)
    for year in {m.year for m in months} | _manifest_years(first, last):
        manifest = manifests.for_month(date(year, 1, 1))
        for label in manifest.entries:
            month = date(int(label[:4]), int(label[5:7]), 1)
            if (first is None or month >= first) and (last is None or month <= last):
                months.add(month)
    outcome = HistoryOutcome(
        run=export_run_start(
            kind=ExportRun.Kind.HISTORY_VERIFY,
            range_from=month_label(first) if first else "",
            range_to=month_label(last) if last else "",
            options={"acct_ids": sorted(selected)} if selected is not None else {},
        )
    )
    progress = Progress(total=len(months), unit="files", emit=emit)
    try:
        in_database = history_fingerprints(months=months, acct_ids=selected)
        for month in sorted(months):
            manifest = manifests.for_month(month)
            if _month_verify(
                month=month,
                manifest=manifest,
                db_stats=in_database.get(month, MonthStats()),
                acct_ids=selected,
                problems=outcome.problems,
            ):
                outcome.unchanged.append(history_key(month))
            progress.advance(label=month_label(month))
    except BaseException as exc:
        export_run_finish(run=outcome.run, error=f"{type(exc).__name__}: {exc}")
        raise
    outcome.seconds = progress.elapsed
    summary = f"{len(outcome.unchanged)} of {len(months)} files verified"
    if outcome.problems:
        summary += f"; {len(outcome.problems)} problems"
    export_run_finish(run=outcome.run, problems=outcome.problems, summary=summary)
    return outcome


def _manifest_years(first: date | None, last: date | None) -> set[int]:
    """Years with a manifest in storage within the range (files whose rows left the database
    are still verified)."""
    try:
        _, years = export_storage().listdir(f"{HISTORY_PREFIX}/")
    except FileNotFoundError:
        return set()
    found = set()
    for name in years:
        if name.isdigit() and len(name) == 4:
            year = int(name)
            if (first is None or year >= first.year) and (last is None or year <= last.year):
                found.add(year)
    return found
