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
    """

    name: str

    def write(self, calls: Sequence[LLMCall]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
