"""The SDK runtime: settings, the pipeline and its sinks; `configure`, `flush`, `shutdown`, `stats`.

With no configuration the first record creates the default runtime (settings from the
environment; the SQLite sink at `$TOKENTRAIL_HOME/tokentrail.db`). `configure()` replaces the
runtime, draining the old pipeline into its sinks first. `shutdown` runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tokentrail.core import LLMCall
from tokentrail.core.settings import Settings
from tokentrail.pricing import configure_prices
from tokentrail.sinks.base import Sink
from tokentrail.sinks.factory import create_sink
from tokentrail.sinks.pipeline import Pipeline, PipelineStats
from tokentrail.tracking.guard import guard, internal_errors

Tap = Callable[[LLMCall], None]


class Runtime:
    """One configured SDK: its settings and the pipeline that carries records to sinks."""

    __slots__ = ("pipeline", "settings")

    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline


_lock = threading.RLock()
_runtime: Runtime | None = None
_taps: tuple[Tap, ...] = ()  # synchronous observers (testing.capture); empty on the hot path
_atexit_registered = False


def _build_sinks(settings: Settings) -> list[Sink]:
    # names go through the sinks factory; Sink objects passed to configure() are used as they are
    return [create_sink(item, settings) for item in settings.sinks]


def _install_prices(settings: Settings) -> None:
    # None clears earlier overrides, so reconfiguring without prices really removes them.
    configure_prices(settings.prices)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_shutdown_at_exit)
        _atexit_registered = True


def configure(**kwargs: Any) -> Settings:
    """Set up the SDK (SPEC §4). Keyword arguments win over `TOKENTRAIL_<NAME>` variables.

    `sinks` takes names (`sqlite`, `collector`, `otel`, `log`, `memory`) and sink objects.
    Raises `ValidationError` for a bad setting: configuration is explicit, so it fails loudly.
    """
    global _runtime
    settings = Settings.load(**kwargs)
    _install_prices(settings)  # first: a bad prices file fails before any sink is opened
    sinks = _build_sinks(settings)
    pipeline = Pipeline(sinks, settings.queue_size, settings.batch_size, settings.flush_interval)
    with _lock:
        old, _runtime = _runtime, Runtime(settings, pipeline)
        _register_atexit()
    if old is not None:
        old.pipeline.shutdown(timeout=10.0)
    return settings


def _default_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is not None:
            return _runtime
        settings = Settings.load()
        sinks: list[Sink] = []
        with guard("runtime.default_sinks"):
            sinks = _build_sinks(settings)
            if settings.prices:
                _install_prices(settings)
        # If the default sinks cannot be created (unwritable home), keep an empty pipeline so
        # the host carries on and the failure is counted once rather than on every call.
        pipeline = Pipeline(sinks, settings.queue_size, settings.batch_size, settings.flush_interval)
        _runtime = Runtime(settings, pipeline)
        _register_atexit()
        return _runtime


def get_runtime() -> Runtime:
    """The configured runtime, creating the default one on first use."""
    runtime = _runtime
    return runtime if runtime is not None else _default_runtime()


def current_settings() -> Settings:
    return get_runtime().settings


def emit(call: LLMCall) -> bool:
    """Hand a finished record to the taps and the pipeline. Never blocks, never raises I/O."""
    taps = _taps
    if taps:
        for tap in taps:
            with guard("runtime.tap"):
                tap(call)
    runtime = _runtime
    if runtime is None:
        runtime = _default_runtime()
    return runtime.pipeline.submit(call)


def add_tap(tap: Tap) -> None:
    global _taps
    with _lock:
        _taps = (*_taps, tap)


def remove_tap(tap: Tap) -> None:
    global _taps
    with _lock:
        taps = list(_taps)
        if tap in taps:
            taps.remove(tap)
        _taps = tuple(taps)


def flush(timeout: float | None = None) -> bool:
    """Wait until every record made so far is written by every sink (False on timeout)."""
    runtime = _runtime
    if runtime is None:
        return True
    return runtime.pipeline.flush(timeout)


def shutdown(timeout: float | None = 5.0) -> bool:
    """Write what is queued, close the sinks and stop the worker. Later records are dropped
    (and counted) until `configure()` is called again."""
    runtime = _runtime
    if runtime is None:
        return True
    return runtime.pipeline.shutdown(timeout)


def _shutdown_at_exit() -> None:
    with guard("runtime.atexit"):
        shutdown(timeout=5.0)


def stats() -> PipelineStats:
    """queued, written, dropped, spooled, internal_errors (pipeline + guard), sink_errors."""
    runtime = _runtime
    guard_errors = internal_errors()
    if runtime is None:
        return PipelineStats(internal_errors=guard_errors)
    current = runtime.pipeline.stats()
    return replace(current, internal_errors=current.internal_errors + guard_errors)


def reset() -> None:
    """Shut the runtime down and forget it (tests; the next record builds the default again)."""
    global _runtime
    with _lock:
        old, _runtime = _runtime, None
    if old is not None:
        old.pipeline.shutdown(timeout=10.0)


__all__ = [
    "Runtime",
    "add_tap",
    "configure",
    "current_settings",
    "emit",
    "flush",
    "get_runtime",
    "remove_tap",
    "reset",
    "shutdown",
    "stats",
]
