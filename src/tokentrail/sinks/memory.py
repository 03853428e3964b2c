"""`MemorySink`: keeps records in a list, for tests, notebooks and `testing.capture()`."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tokentrail.core import LLMCall


class MemorySink:
    """A thread-safe in-memory list of every record written to it."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._calls: list[LLMCall] = []
        self.closed = False

    def write(self, calls: Sequence[LLMCall]) -> None:
        with self._lock:
            self._calls.extend(calls)

    def flush(self) -> None:
        """Nothing is buffered: records are visible as soon as `write` returns."""

    def close(self) -> None:
        self.closed = True

    @property
    def calls(self) -> list[LLMCall]:
        """A copy of the records written so far, in write order."""
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)


__all__ = ["MemorySink"]
