"""Progress lines for long exports: done/total, rate per second and the time left."""

import time
from collections.abc import Callable


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts units (rows, files) and reports at most every `every` seconds through `emit`."""

    def __init__(
        self,
        *,
        total: int,
        unit: str,
        emit: Callable[[str], None] | None = None,
        every: float = 2.0,
    ) -> None:
        self.total = total
        self.unit = unit
        self.emit = emit
        self.every = every
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started

    def advance(self, count: int = 1, *, label: str = "", force: bool = False) -> None:
        self.done += count
        now = time.monotonic()
        if self.emit is not None and (force or now - self._last >= self.every):
            self._last = now
            self.emit(self.line(label))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def line(self, label: str = "") -> str:
        rate = self.rate()
        left = max(self.total - self.done, 0)
        eta = _clock(left / rate) if rate > 0 else "?"
        percent = 100 * self.done / self.total if self.total else 100
        prefix = f"{label}: " if label else ""
        return (
            f"{prefix}{self.done:,}/{self.total:,} {self.unit} ({percent:.0f}%) · "
            f"{rate:,.0f} {self.unit}/s · ETA {eta}"
        )
