"""The sink contract: the background worker hands each sink batches of finished records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tokentrail.core import LLMCall


@runtime_checkable
class Sink(Protocol):
    """A destination for records. Called only from the background worker thread.

    `write` may raise; the worker counts and logs the failure and carries on. A sink that
    can lose records on failure (the collector) keeps them itself (the spool).

    Optional: a sink that keeps undelivered records on disk exposes `spooled: int`, the
    number of records currently held in its spool (not yet delivered). The pipeline reads
    it with `getattr(sink, "spooled", 0)` for `stats().spooled`; see `SpoolingSink`.
    """

    name: str

    def write(self, calls: Sequence[LLMCall]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class SpoolingSink(Sink, Protocol):
    """A sink with an on-disk spool (the collector sink)."""

    @property
    def spooled(self) -> int:
        """Records currently waiting in the spool for redelivery."""
        ...


def _int_attribute(sink: object, name: str) -> int:
    try:
        value = getattr(sink, name, 0)
    except Exception:
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def spooled_count(sink: object) -> int:
    """The sink's spool size, 0 for sinks without one or when reading it fails."""
    return _int_attribute(sink, "spooled")


def dropped_count(sink: object) -> int:
    """Records a sink itself gave up on (a spool over its size bound), 0 if it keeps none."""
    return _int_attribute(sink, "dropped")
