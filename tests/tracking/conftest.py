"""Tracking tests run against a fresh runtime with an in-memory sink and, where time matters,
a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tokentrail.core import LLMCall
from tokentrail.sinks.memory import MemorySink
from tokentrail.tracking import guard, runtime
from tokentrail.tracking.clock import FrozenClock, set_clock

T0 = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)


class Recorded(MemorySink):
    """MemorySink whose `records()` flushes the pipeline first."""

    def records(self) -> list[LLMCall]:
        assert runtime.flush(timeout=10)
        return self.calls

    def one(self) -> LLMCall:
        got = self.records()
        assert len(got) == 1, got
        return got[0]


@pytest.fixture(autouse=True)
def _fresh_runtime():
    yield
    runtime.reset()
    guard.set_reraise(None)


@pytest.fixture
def sink() -> Recorded:
    recorded = Recorded()
    runtime.configure(sinks=[recorded], flush_interval=0.05)
    return recorded


@pytest.fixture
def clock():
    frozen = FrozenClock(T0)
    previous = set_clock(frozen)
    yield frozen
    set_clock(previous)
