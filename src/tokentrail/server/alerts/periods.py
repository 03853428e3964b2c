"""Time windows in UTC: budget periods and alert-rule windows, and the clock they read.

A budget's period is a calendar period: `day` (from UTC midnight), `week` (ISO, from Monday
00:00 UTC) or `month` (from the 1st, 00:00 UTC). An alert rule's window is one of those or a
fixed duration that tiles the UTC day: `<N>m` with N dividing 60 (`5m`, `15m`, `30m`) or
`<N>h` with N dividing 24 (`1h`, `6h`, `24h`); `1d` means `day` and `1w` means `week`.
Windows are tumbling: `1h` is each UTC clock hour, so the value a rule watches and the
period an alert belongs to are the same exact interval, answered from the rollups.

The clock is replaceable (`set_clock`) so tests can freeze time at period boundaries.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tokentrail.core import ValidationError

PERIODS: tuple[str, ...] = ("day", "week", "month")
_CALENDAR_ALIASES = {"day": "day", "1d": "day", "week": "week", "1w": "week", "month": "month"}
_DURATION = re.compile(r"^([1-9][0-9]*)([mh])$")
WINDOW_HELP = "day, week, month, or <N>m (N divides 60) / <N>h (N divides 24), e.g. 15m, 1h, 24h"

Clock = Callable[[], datetime]


def _system_now() -> datetime:
    return datetime.now(UTC)


_clock: Clock = _system_now


def now() -> datetime:
    """The current time (aware, UTC) for periods, windows and `fired_at`."""
    value = _clock()
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def set_clock(clock: Clock | None) -> Clock:
    """Install a clock (a callable returning an aware datetime); None restores the system
    clock. Returns the previous one."""
    global _clock
    previous = _clock
    _clock = clock if clock is not None else _system_now
    return previous


def wall_micros() -> int:
    """The real time in epoch microseconds, for record keeping (`created_at`): unlike `now()`,
    never frozen, so rows made under a frozen clock still differ."""
    return time.time_ns() // 1000


def _midnight(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def calendar_bounds(period: str, at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the `day`, `week` or `month` holding `at`, in UTC."""
    day = _midnight(at)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())  # ISO weeks start on Monday
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise ValidationError("period", f"{period!r} is not one of {', '.join(PERIODS)}")


def parse_period(field: str, value: object) -> str:
    if not isinstance(value, str) or value not in PERIODS:
        raise ValidationError(field, f"{value!r} is not one of {', '.join(PERIODS)}")
    return value


@dataclass(frozen=True, slots=True)
class Window:
    """An alert-rule window: a calendar period, or a fixed duration tiling the UTC day."""

    text: str  # as the rule was written (lower case), e.g. "1h", "day"
    calendar: str | None = None  # day / week / month
    seconds: int | None = None  # fixed durations

    def bounds(self, at: datetime) -> tuple[datetime, datetime]:
        if self.calendar is not None:
            return calendar_bounds(self.calendar, at)
        assert self.seconds is not None
        day = _midnight(at)
        elapsed = int((at.astimezone(UTC) - day).total_seconds())
        start = day + timedelta(seconds=elapsed - elapsed % self.seconds)
        return start, start + timedelta(seconds=self.seconds)


def parse_window(field: str, value: object) -> Window:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string ({WINDOW_HELP})")
    text = value.strip().lower()
    calendar = _CALENDAR_ALIASES.get(text)
    if calendar is not None:
        return Window(text, calendar=calendar)
    match = _DURATION.match(text)
    if match is None:
        raise ValidationError(field, f"{value!r} is not a window ({WINDOW_HELP})")
    n, unit = int(match.group(1)), match.group(2)
    whole = 60 if unit == "m" else 24
    if whole % n:
        raise ValidationError(
            field, f"{value!r} does not tile the UTC {'hour' if unit == 'm' else 'day'} ({WINDOW_HELP})"
        )
    seconds = n * (60 if unit == "m" else 3600)
    if seconds == 86_400:
        return Window(text, calendar="day")
    return Window(text, seconds=seconds)


def iso(value: datetime) -> str:
    """`2025-10-01T00:00:00Z`: the API's spelling of a period bound."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "PERIODS",
    "WINDOW_HELP",
    "Clock",
    "Window",
    "calendar_bounds",
    "iso",
    "now",
    "parse_period",
    "parse_window",
    "set_clock",
    "wall_micros",
]
