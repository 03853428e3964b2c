"""Helpers for tests and notebooks: `with tokentrail.testing.capture() as calls:`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tokentrail.core import LLMCall
from tokentrail.tracking import runtime as _runtime


class CapturedCalls(list[LLMCall]):
    """The records emitted inside a `capture()` block, in emission order."""

    def by_operation(self, operation: str) -> list[LLMCall]:
        return [call for call in self if call.operation == operation]


@contextmanager
def capture(*, flush_timeout: float | None = 10.0) -> Iterator[CapturedCalls]:
    """Collect every record emitted inside the block as `LLMCall` objects.

    Records are observed as they are emitted (from any thread), so nothing is taken away from
    the configured sinks: they still receive every record. On exit the pipeline is flushed, so
    the sinks have written everything the block produced.
    """
    calls = CapturedCalls()
    _runtime.add_tap(calls.append)
    try:
        yield calls
    finally:
        _runtime.remove_tap(calls.append)
        _runtime.flush(flush_timeout)


__all__ = ["CapturedCalls", "capture"]
