"""The record pipeline: a bounded in-memory queue and one background worker writing to sinks.

`submit` is on the hot path of every tracked call, so it does no I/O and takes no lock in the
common case: a `deque` append (atomic in CPython) plus, when a full batch is waiting, one
`Event.set` to wake the worker early. Otherwise the worker wakes every `flush_interval`.
`flush` enqueues a marker and waits for the worker to reach it, so everything submitted
before the call has been handed to every sink (and each sink flushed) when it returns True.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tokentrail.core import LLMCall, ValidationError
from tokentrail.sinks.base import Sink, dropped_count, spooled_count

logger = logging.getLogger("tokentrail")


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """Counters of one pipeline (or of the SDK runtime, which adds its guard's errors).

    queued: records waiting in the in-memory queue now.
    written: records the worker has handed to every sink (a sink's failure is counted in
        `sink_errors`, not here, but the record still counts as processed).
    dropped: records refused because the queue was full or the pipeline shut down.
    spooled: records the sinks currently hold in on-disk spools, awaiting delivery.
    internal_errors: exceptions caught inside tokentrail (sink failures, guard hits).
    sink_errors: per sink name, the number of records in batches that sink failed on.
    """

    queued: int = 0
    written: int = 0
    dropped: int = 0
    spooled: int = 0
    internal_errors: int = 0
    sink_errors: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "written": self.written,
            "dropped": self.dropped,
            "spooled": self.spooled,
            "internal_errors": self.internal_errors,
            "sink_errors": dict(self.sink_errors),
        }


class _Marker:
    """Placed in the queue by flush/shutdown; the worker signals it once it gets there."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


class Pipeline:
    """Bounded queue + one daemon worker thread that writes batches to each sink."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        queue_size: int = 10_000,
        batch_size: int = 512,
        flush_interval: float = 1.0,
    ) -> None:
        for name, value in (("queue_size", queue_size), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValidationError(name, f"must be a positive integer, got {value!r}")
        if not isinstance(flush_interval, int | float) or flush_interval <= 0:
            raise ValidationError("flush_interval", f"must be a positive number of seconds, got {flush_interval!r}")
        for i, sink in enumerate(sinks):
            if not callable(getattr(sink, "write", None)):
                raise ValidationError(f"sinks[{i}]", f"{sink!r} has no write(calls) method")
        self._sinks: tuple[Sink, ...] = tuple(sinks)
        self._names = _unique_names(self._sinks)
        self._queue: deque[LLMCall | _Marker] = deque()
        self._maxsize = queue_size
        self._batch_size = batch_size
        self._interval = float(flush_interval)
        self._closed = False
        # counters: `_dropped` is bumped by callers (under the lock, off the common path);
        # the rest only by the worker thread.
        self._lock = threading.Lock()
        self._dropped = 0
        self._written = 0
        self._internal_errors = 0
        self._sink_errors = dict.fromkeys(self._names, 0)
        self._wake = threading.Event()
        self._thread = self._start_worker()
        _register_fork_handler(self)

    # ---- caller side ----------------------------------------------------------------------
    def submit(self, call: LLMCall) -> bool:
        """Queue a record for the sinks. Never blocks; False (and counted) when dropped."""
        queue = self._queue
        if self._closed or len(queue) >= self._maxsize:
            with self._lock:
                self._dropped += 1
            return False
        queue.append(call)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record submitted before this call is written by every sink.

        Returns False if that did not happen within `timeout` seconds (or cannot happen:
        the worker is gone, or this is the worker thread itself).
        """
        if threading.current_thread() is self._thread:
            return False
        if not self._thread.is_alive():
            return not self._queue
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def shutdown(self, timeout: float | None = 5.0) -> bool:
        """Write what is queued, flush and close the sinks, stop the worker. Idempotent."""
        with self._lock:
            if self._closed:
                already = True
            else:
                already = False
                self._closed = True
        if already or threading.current_thread() is self._thread:
            return not self._thread.is_alive()
        if not self._thread.is_alive():
            return False
        marker = _Marker(stop=True)
        self._queue.append(marker)
        self._wake.set()
        done = marker.done.wait(timeout)
        if done:
            self._thread.join(1.0)
        return done

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sinks(self) -> tuple[Sink, ...]:
        return self._sinks

    def stats(self) -> PipelineStats:
        queued = sum(1 for item in tuple(self._queue) if type(item) is not _Marker)
        return PipelineStats(
            queued=queued,
            written=self._written,
            dropped=self._dropped + sum(dropped_count(sink) for sink in self._sinks),
            spooled=sum(spooled_count(sink) for sink in self._sinks),
            internal_errors=self._internal_errors,
            sink_errors=MappingProxyType(dict(self._sink_errors)),
        )

    # ---- worker side ----------------------------------------------------------------------
    def _start_worker(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="tokentrail-pipeline", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        while True:
            try:
                woken = self._wake.wait(self._interval)
                self._wake.clear()
                if self._drain():
                    return
                if not woken:
                    self._redeliver_spools()
            except BaseException:  # the worker must never die: count, log, keep going
                self._internal_errors += 1
                logger.exception("tokentrail pipeline worker error (continuing)")

    def _drain(self) -> bool:
        """Write everything queued; True once the stop marker has been handled."""
        queue = self._queue
        batch: list[LLMCall] = []
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            if type(item) is _Marker:
                if batch:
                    self._write(batch)
                    batch = []
                self._finish_marker(item)
                if item.stop:
                    # anything that slipped in behind the stop marker will never be written
                    leftover = sum(1 for i in queue if type(i) is not _Marker)
                    if leftover:
                        with self._lock:
                            self._dropped += leftover
                    for rest in queue:
                        if type(rest) is _Marker:
                            rest.done.set()
                    queue.clear()
                    return True
                continue
            batch.append(item)  # type: ignore[arg-type]
            if len(batch) >= self._batch_size:
                self._write(batch)
                batch = []
        if batch:
            self._write(batch)
        return False

    def _write(self, batch: list[LLMCall]) -> None:
        records = tuple(batch)
        for name, sink in zip(self._names, self._sinks, strict=True):
            try:
                sink.write(records)
            except Exception as exc:
                self._sink_failed(name, len(records), "write", exc)
        self._written += len(records)

    def _redeliver_spools(self) -> None:
        """On an idle tick, let spooling sinks retry delivery (they respect their own backoff),
        so a process that has gone quiet still empties its spool once the collector is back."""
        for name, sink in zip(self._names, self._sinks, strict=True):
            if spooled_count(sink):
                try:
                    sink.flush()
                except Exception as exc:
                    self._sink_failed(name, 0, "flush", exc)

    def _finish_marker(self, marker: _Marker) -> None:
        try:
            for name, sink in zip(self._names, self._sinks, strict=True):
                op = "close" if marker.stop else "flush"
                method = getattr(sink, op, None)
                if method is None:
                    continue
                try:
                    method()
                except Exception as exc:
                    self._sink_failed(name, 0, op, exc)
        finally:
            marker.done.set()

    def _sink_failed(self, name: str, records: int, op: str, exc: Exception) -> None:
        self._internal_errors += 1
        self._sink_errors[name] = failures = self._sink_errors.get(name, 0) + max(records, 1)
        # log the first failure with its traceback, then at powers of two to avoid flooding
        if failures & (failures - 1) == 0 or records == 0:
            logger.warning(
                "tokentrail sink %r failed to %s %d record(s) (%d so far): %r",
                name,
                op,
                records,
                failures,
                exc,
                exc_info=failures == max(records, 1),
            )

    def _after_fork(self) -> None:
        # The child has no worker thread; the parent will write what was queued before fork.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._queue.clear()
        if not self._closed:
            self._thread = self._start_worker()


def _unique_names(sinks: Sequence[object]) -> tuple[str, ...]:
    """Each sink's `name`, made unique (`memory`, `memory#1`) so its error count is its own."""
    names: list[str] = []
    for index, sink in enumerate(sinks):
        name = getattr(sink, "name", None)
        if not isinstance(name, str) or not name:
            name = type(sink).__name__
        if name in names:
            name = f"{name}#{index}"
        names.append(name)
    return tuple(names)


def _register_fork_handler(pipeline: Pipeline) -> None:
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(pipeline)

    def after_in_child() -> None:
        live = ref()
        if live is not None:
            live._after_fork()

    os.register_at_fork(after_in_child=after_in_child)


__all__ = ["Pipeline", "PipelineStats"]
