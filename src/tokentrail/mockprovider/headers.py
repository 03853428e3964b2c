"""Response headers as each provider sends them (PROVIDERS.md A.10)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from tokentrail.mockprovider.state import BucketReading

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def go_duration(seconds: float) -> str:
    """A Go `time.Duration` string at millisecond precision, as OpenAI's reset headers:
    `0s`, `120ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, frac = divmod(rest, 1000)
    text = f"{whole}" + (f".{frac:03d}".rstrip("0") if frac else "") + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return text


def rfc3339_after(seconds: float, now: float | None = None) -> str:
    """Anthropic's reset format: the UTC second at which the bucket is full, e.g. `2025-08-21T12:40:59Z`."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC) + timedelta(seconds=math.ceil(seconds))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def openai_request_id(new_id: str) -> str:
    return f"req_{new_id}"


def anthropic_request_id(new_id: str) -> str:
    return f"req_011C{new_id}"


def openai_rate_headers(readings: Mapping[str, BucketReading]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for kind in ("requests", "tokens"):
        reading = readings.get(kind)
        if reading is not None:
            out.append((f"x-ratelimit-limit-{kind}", str(reading.limit)))
    for kind in ("requests", "tokens"):
        reading = readings.get(kind)
        if reading is not None:
            out.append((f"x-ratelimit-remaining-{kind}", str(reading.remaining)))
    for kind in ("requests", "tokens"):
        reading = readings.get(kind)
        if reading is not None:
            out.append((f"x-ratelimit-reset-{kind}", go_duration(reading.reset_s)))
    return out


def azure_rate_headers(readings: Mapping[str, BucketReading]) -> list[tuple[str, str]]:
    """Azure sends only the remaining counts."""
    return [
        (f"x-ratelimit-remaining-{kind}", str(readings[kind].remaining))
        for kind in ("requests", "tokens")
        if kind in readings
    ]


def anthropic_rate_headers(readings: Mapping[str, BucketReading], now: float | None = None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        reading = readings.get(kind)
        if reading is None:
            continue
        out.append((f"anthropic-ratelimit-{kind}-limit", str(reading.limit)))
        out.append((f"anthropic-ratelimit-{kind}-remaining", str(reading.remaining)))
        out.append((f"anthropic-ratelimit-{kind}-reset", rfc3339_after(reading.reset_s, now)))
    return out
