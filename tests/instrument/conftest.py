"""Instrumentation tests: a fresh runtime writing to memory, and no patch left behind."""

from __future__ import annotations

import pytest

import tokentrail
from tokentrail import testing
from tokentrail.instrument import uninstrument
from tokentrail.tracking import guard, runtime


@pytest.fixture(autouse=True)
def _clean():
    yield
    uninstrument()
    runtime.reset()
    guard.set_reraise(None)


@pytest.fixture
def calls():
    """Records emitted inside the test, as `LLMCall`s (memory sink; nothing on disk)."""
    tokentrail.configure(sinks=["memory"])
    with testing.capture() as captured:
        yield captured
