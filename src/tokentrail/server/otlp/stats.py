"""Counters of the OTLP endpoint, per application (what `/metrics` can expose as
`tokentrail_otlp_*`): spans received, stored as calls, duplicates, ignored (not GenAI) and
rejected (GenAI but invalid)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

_create_lock = threading.Lock()


@dataclass(slots=True)
class OtlpCounters:
    requests: int = 0
    spans_received: int = 0
    calls_stored: int = 0
    duplicates: int = 0
    spans_ignored: int = 0
    spans_rejected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, value in amounts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def otlp_counters(app: Any) -> OtlpCounters:
    """The counters of a FastAPI application (created on first use, kept in `app.state`)."""
    state = app.state
    counters = getattr(state, "otlp_counters", None)
    if counters is None:
        with _create_lock:
            counters = getattr(state, "otlp_counters", None)
            if counters is None:
                counters = state.otlp_counters = OtlpCounters()
    return counters


__all__ = ["OtlpCounters", "otlp_counters"]
