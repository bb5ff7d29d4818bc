"""JSON manifests kept beside exported files: one document per folder, entries by period."""

import io
import json
from dataclasses import dataclass, field

from .objects import object_put, object_read

MANIFEST_FORMAT = 1


@dataclass
class Manifest:
    """A manifest read from storage; `save()` writes it back only when an entry changed."""

    key: str
    header: dict = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def load(cls, key: str, *, header: dict) -> "Manifest":
        raw = object_read(key)
        if raw is None:
            return cls(key=key, header=header)
        try:
            document = json.loads(raw)
            entries = document["entries"]
        except (ValueError, KeyError, TypeError):
            # An unreadable manifest describes nothing: its files are checked and redone.
            return cls(key=key, header=header, dirty=True)
        return cls(key=key, header=header, entries=entries, dirty=document.get("header") != header)

    def get(self, period: str) -> dict | None:
        return self.entries.get(period)

    def set(self, period: str, entry: dict) -> None:
        if self.entries.get(period) != entry:
            self.entries[period] = entry
            self.dirty = True

    def discard(self, period: str) -> None:
        if self.entries.pop(period, None) is not None:
            self.dirty = True

    def render(self) -> bytes:
        document = {
            "format": MANIFEST_FORMAT,
            "header": self.header,
            "entries": dict(sorted(self.entries.items())),
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

    def save(self) -> bool:
        if not self.dirty:
            return False
        object_put(self.key, io.BytesIO(self.render()))
        self.dirty = False
        return True
