"""The time source of trackers: wall-clock UTC for timestamps, a monotonic counter for
durations. Replaceable so tests can freeze time instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...

    def perf(self) -> float:
        """Monotonic seconds, for durations."""
        ...


class SystemClock:
    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def perf(self) -> float:
        return time.perf_counter()


class FrozenClock:
    """A clock that moves only when told: `advance(seconds=..., ms=...)`."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2025, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._start = start
        self._offset = 0.0

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._offset)

    def perf(self) -> float:
        return self._offset

    def advance(self, seconds: float = 0.0, *, ms: float = 0.0) -> None:
        delta = seconds + ms / 1000.0
        if delta < 0:
            raise ValueError("a clock cannot go backwards")
        self._offset += delta


_clock: Clock = SystemClock()


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock | None) -> Clock:
    """Install `clock` (None restores the system clock); returns the previous one."""
    global _clock
    previous = _clock
    _clock = clock if clock is not None else SystemClock()
    return previous


__all__ = ["Clock", "FrozenClock", "SystemClock", "get_clock", "set_clock"]
