"""The Stripe event archive: `events/<yyyy>/<mm>/<dd>.jsonl.gz`, one event per line, and
`events/<yyyy>/<mm>/manifest.json` describing each day's file.

Sources: the events dj-stripe stored as webhooks arrived, and Stripe's events API for the days
it still holds (30), which fills gaps left by missed webhooks. A day's file is the union of what
it already held and what the sources have (by event id; a version already archived is kept), in
(created, id) order, gzip with a fixed header: a run with nothing new writes nothing.
"""

import gzip
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.utils import timezone
from djstripe.models import Event

from .gateways import EVENTS_RETENTION_DAYS, stripe_events_list
from .gzfiles import gzip_bytes
from .manifests import Manifest
from .models import ExportRun
from .objects import object_digest, object_put, object_read
from .progress import Progress
from .runs import export_run_file, export_run_finish, export_run_start

COMMAND_VERSION = "export_stripe_events/1"
EVENTS_PREFIX = "events"


def event_day_key(day: date) -> str:
    return f"{EVENTS_PREFIX}/{day:%Y/%m/%d}.jsonl.gz"


def event_manifest_key(day: date) -> str:
    return f"{EVENTS_PREFIX}/{day:%Y/%m}/manifest.json"


def _day_of(created: int) -> date:
    return datetime.fromtimestamp(created, tz=UTC).date()


def _start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


@dataclass
class EventsOutcome:
    run: ExportRun | None = None
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    events: int = 0
    from_api: int = 0

    def summary(self) -> str:
        text = (
            f"{len(self.written)} day files written, {len(self.unchanged)} unchanged, "
            f"{self.events:,} events ({self.from_api:,} read from the Stripe API)"
        )
        if self.planned:
            text += f"; {len(self.planned)} would be written"
        return text


def _archived(key: str) -> dict[str, dict]:
    raw = object_read(key)
    if raw is None:
        return {}
    events = {}
    for line in gzip.decompress(raw).decode().splitlines():
        if line.strip():
            event = json.loads(line)
            events[event["id"]] = event
    return events


def _held_events(first: date, last: date) -> dict[date, dict[str, dict]]:
    days: dict[date, dict[str, dict]] = defaultdict(dict)
    held = Event.objects.filter(
        created__gte=datetime(first.year, first.month, first.day, tzinfo=UTC),
        created__lt=datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1),
    ).order_by("created", "id")
    for event_id, stripe_data, created in held.values_list("id", "stripe_data", "created").iterator(
        chunk_size=1000
    ):
        event = dict(stripe_data or {})
        event.setdefault("id", event_id)
        event.setdefault("created", int(created.timestamp()))
        days[_day_of(event["created"])].setdefault(event["id"], event)
    return days


def _render(events: Iterable[dict]) -> bytes:
    ordered = sorted(events, key=lambda event: (event["created"], event["id"]))
    return "".join(
        json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n" for event in ordered
    ).encode()


def _held_range() -> tuple[date, date] | None:
    first = Event.objects.order_by("created").values_list("created", flat=True).first()
    last = Event.objects.order_by("-created").values_list("created", flat=True).first()
    if first is None:
        return None
    return first.astimezone(UTC).date(), last.astimezone(UTC).date()


def stripe_events_export(
    *,
    first: date | None = None,
    last: date | None = None,
    use_api: bool = True,
    today: date | None = None,
    dry_run: bool = False,
    emit: Callable[[str], None] | None = None,
) -> EventsOutcome:
    """Archive every event we hold or Stripe still has, per UTC day, up to yesterday.

    Idempotent: a day whose file already holds every event is left as it is. Raises
    ExternalServiceError when the Stripe API cannot be read (nothing is half-written).
    """
    today = today or timezone.now().astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    api_first = today - timedelta(days=EVENTS_RETENTION_DAYS)
    held = _held_range()
    if first is None:
        first = min(held[0], api_first) if held and use_api else (held[0] if held else api_first)
    last = min(last or yesterday, yesterday)
    outcome = EventsOutcome()
    if first > last:
        return outcome
    days = _held_events(first, last)
    if use_api and last >= api_first:
        window_first = max(first, api_first)
        for event in stripe_events_list(
            created_gte=_start(window_first), created_lt=_start(last + timedelta(days=1))
        ):
            outcome.from_api += 1
            days[_day_of(event["created"])].setdefault(event["id"], event)
    if not dry_run:
        outcome.run = export_run_start(
            kind=ExportRun.Kind.EVENTS,
            range_from=f"{first:%Y-%m-%d}",
            range_to=f"{last:%Y-%m-%d}",
            options={"api": use_api},
        )
    manifests: dict[str, Manifest] = {}
    progress = Progress(total=len(days), unit="days", emit=emit)
    try:
        for day in sorted(days):
            _day_export(day, days.pop(day), manifests, outcome, dry_run)
            progress.advance(label=f"{day:%Y-%m-%d}")
        for manifest in manifests.values():
            if not dry_run:
                manifest.save()
    except BaseException as exc:
        if outcome.run is not None:
            export_run_finish(run=outcome.run, error=f"{type(exc).__name__}: {exc}")
        raise
    if outcome.run is not None:
        export_run_finish(run=outcome.run, summary=outcome.summary())
    return outcome


def _day_export(
    day: date,
    found: dict[str, dict],
    manifests: dict[str, Manifest],
    outcome: EventsOutcome,
    dry_run: bool,
) -> None:
    key = event_day_key(day)
    manifest_key = event_manifest_key(day)
    if manifest_key not in manifests:
        manifests[manifest_key] = Manifest.load(
            manifest_key, header={"layout": "one Stripe event JSON per line, by created then id"}
        )
    manifest = manifests[manifest_key]
    events = _archived(key)
    for event_id, event in found.items():
        events.setdefault(event_id, event)
    ordered = sorted(events.values(), key=lambda event: (event["created"], event["id"]))
    data, sha256 = gzip_bytes(f"{day:%d}.jsonl", _render(ordered))
    outcome.events += len(ordered)
    stored = object_digest(key)
    if stored is not None and stored.sha256 == sha256:
        outcome.unchanged.append(key)
        written = False
    elif dry_run:
        outcome.planned.append(key)
        return
    else:
        object_put(key, io.BytesIO(data))
        outcome.written.append(key)
        written = True
    entry = manifest.get(f"{day:%d}") or {}
    if dry_run:
        return
    manifest.set(
        f"{day:%d}",
        {
            "key": key,
            "rows": len(ordered),
            "sha256": sha256,
            "bytes": len(data),
            "first_event": ordered[0]["id"],
            "last_event": ordered[-1]["id"],
            "exported_at": entry.get("exported_at")
            if entry.get("sha256") == sha256
            else timezone.now().isoformat(timespec="seconds"),
            "command_version": COMMAND_VERSION,
        },
    )
    export_run_file(
        run=outcome.run,
        key=key,
        period=f"{day:%Y-%m-%d}",
        written=written,
        rows=len(ordered),
        size=len(data),
        sha256=sha256,
    )
