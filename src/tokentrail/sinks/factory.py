"""Sink names (`Settings.sinks`, `TOKENTRAIL_SINKS`) to sink objects.

Every sink module is imported here, but none imports an optional dependency at module level:
the `otel` sink loads OpenTelemetry when it is constructed and raises `MissingExtraError`
(naming the `otel` extra) when it is not installed, so only choosing it needs the extra.
"""

from __future__ import annotations

from collections.abc import Callable

from tokentrail.core import ValidationError
from tokentrail.core.settings import Settings
from tokentrail.sinks import collector, log, memory, otel, sqlite
from tokentrail.sinks.base import Sink

_BUILDERS: dict[str, Callable[[Settings], Sink]] = {
    "sqlite": sqlite.SQLiteSink,
    "collector": collector.CollectorSink,
    "otel": otel.OTelSink,
    "log": log.LogSink,
    "memory": lambda settings: memory.MemorySink(),
}

SINK_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def create_sink(spec: str | Sink, settings: Settings) -> Sink:
    """A sink by name (case and surrounding spaces ignored), or `spec` itself if it is one."""
    if not isinstance(spec, str):
        if callable(getattr(spec, "write", None)):
            return spec
        raise ValidationError("sinks", f"{spec!r} is neither a sink name nor an object with write(calls)")
    builder = _BUILDERS.get(spec.strip().lower())
    if builder is None:
        raise ValidationError("sinks", f"unknown sink {spec!r}; choose from {', '.join(SINK_NAMES)}")
    return builder(settings)


def create_sinks(settings: Settings) -> list[Sink]:
    """Every sink `settings.sinks` names, in order."""
    return [create_sink(spec, settings) for spec in settings.sinks]


__all__ = ["SINK_NAMES", "create_sink", "create_sinks"]
