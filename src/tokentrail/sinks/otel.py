"""The `otel` sink: every record becomes an OpenTelemetry span and a set of metric points.

Records reach the sink from the background worker after their call finished, so spans are
created after the fact with explicit start and end times. OpenTelemetry is imported when the
sink is constructed, not when this module is imported; without the `otel` extra the
constructor raises `MissingExtraError`.

Parent and trace linkage (the sink cannot choose span ids; the application's tracer
provider does):
- `parent_id` naming a record this sink already turned into a span: that span is the parent.
- `parent_id` of 16 hex digits with a `trace_id` of 32 hex digits (or a UUID): a remote
  OpenTelemetry parent, so the span joins the application's own trace.
- any other `parent_id` (a tokentrail record id, e.g. of a workflow, which finishes and so
  arrives *after* its children): the span waits, up to `parent_wait_seconds` and at most
  `max_waiting` records, for the parent to arrive; it is then emitted under the parent's
  span. A child whose parent never comes is emitted as the root of its own trace.
Every span carries `tokentrail.record.id`, `tokentrail.trace_id` and `tokentrail.parent_id`,
so the tree can be rebuilt from attributes whatever happened. Metrics are recorded at once;
only spans wait. `flush()` does not release waiting spans (the worker may flush often);
`close()` does.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from tokentrail.core import LLMCall, MissingExtraError, ValidationError
from tokentrail.core.settings import Settings
from tokentrail.sinks.otel_metrics import OTelMetrics
from tokentrail.sinks.otel_spans import (
    INTERNAL_OPERATIONS,
    SCHEMA_URL,
    error_description,
    span_attributes,
    span_name,
    span_times,
)

log = logging.getLogger("tokentrail.sinks.otel")

_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def otel_trace_id(value: str | None) -> int | None:
    """A record's `trace_id` as an OpenTelemetry trace id: 32 hex digits or a UUID, not zero."""
    if not value:
        return None
    text = value.strip().lower()
    if _UUID.match(text):
        text = text.replace("-", "")
    if not _HEX32.match(text):
        return None
    return int(text, 16) or None


def otel_span_id(value: str | None) -> int | None:
    """A record's `parent_id` as an OpenTelemetry span id: 16 hex digits, not zero."""
    if not value:
        return None
    text = value.strip().lower()
    if not _HEX16.match(text):
        return None
    return int(text, 16) or None


def _load_otel() -> SimpleNamespace:
    try:
        api = SimpleNamespace(
            trace=importlib.import_module("opentelemetry.trace"),
            metrics=importlib.import_module("opentelemetry.metrics"),
            context=importlib.import_module("opentelemetry.context"),
        )
        importlib.import_module("opentelemetry.sdk")  # without an SDK every span is silently dropped
    except ImportError as exc:
        raise MissingExtraError("otel", "the otel sink") from exc
    return api


def _version() -> str:
    try:
        return importlib.metadata.version("tokentrail")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class OTelSink:
    """Spans and metrics through the given (or the global) tracer and meter providers.

    The sink never shuts the providers down: they belong to the application.
    """

    name = "otel"

    def __init__(
        self,
        settings: Settings,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        parent_wait_seconds: float = 60.0,
        max_waiting: int = 10_000,
        max_remembered: int = 10_000,
    ) -> None:
        if parent_wait_seconds < 0:
            raise ValidationError("parent_wait_seconds", "must not be negative")
        for field, value in (("max_waiting", max_waiting), ("max_remembered", max_remembered)):
            if value < 0:
                raise ValidationError(field, "must not be negative")
        self._api = _load_otel()
        trace = self._api.trace
        version = _version()
        self._tracer = trace.get_tracer("tokentrail", version, tracer_provider=tracer_provider, schema_url=SCHEMA_URL)
        meter = self._api.metrics.get_meter("tokentrail", version, meter_provider=meter_provider, schema_url=SCHEMA_URL)
        self._metrics = OTelMetrics(meter, usage_counters=settings.otel_usage_counters)
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._capture_content = settings.capture_content
        self._parent_wait = parent_wait_seconds
        self._max_waiting = max_waiting
        self._max_remembered = max_remembered
        self._lock = threading.Lock()
        # record id -> SpanContext of its span, for children that arrive after their parent
        self._emitted: OrderedDict[str, Any] = OrderedDict()
        # parent record id -> [(arrival, child)], in order of first arrival
        self._waiting: dict[str, list[tuple[float, LLMCall]]] = {}
        self._waiting_count = 0

    # ---- Sink protocol ----------------------------------------------------------------------
    def write(self, calls: Sequence[LLMCall]) -> None:
        """Record metrics and emit spans; one bad record does not stop the rest of the batch."""
        first_error: Exception | None = None
        with self._lock:
            now = time.monotonic()
            for call in calls:
                try:
                    self._metrics.record(call)
                    self._accept(call, now)
                except Exception as exc:  # re-raised below so the worker counts it
                    log.debug("otel sink: record %s failed", getattr(call, "id", "?"), exc_info=True)
                    first_error = first_error or exc
            self._release_expired(now)
        if first_error is not None:
            raise first_error

    def flush(self) -> None:
        with self._lock:
            self._release_expired(time.monotonic())
        self._force_flush()

    def close(self) -> None:
        with self._lock:
            while self._waiting:
                self._release_group(next(iter(self._waiting)))
        self._force_flush()

    @property
    def waiting(self) -> int:
        """Spans held back until their parent record arrives."""
        return self._waiting_count

    # ---- linkage --------------------------------------------------------------------------
    def _waits_for_parent(self, call: LLMCall) -> bool:
        parent = call.parent_id
        if not parent or parent == call.id or parent in self._emitted:
            return False
        return otel_span_id(parent) is None and self._max_waiting > 0 and self._parent_wait > 0

    def _accept(self, call: LLMCall, now: float) -> None:
        if not self._waits_for_parent(call):
            self._emit(call)
            return
        self._waiting.setdefault(call.parent_id, []).append((now, call))  # type: ignore[arg-type]
        self._waiting_count += 1
        if self._waiting_count > self._max_waiting:
            self._release_group(next(iter(self._waiting)))

    def _release_expired(self, now: float) -> None:
        # Groups are in order of their first arrival, so the expired ones are a prefix.
        while self._waiting:
            parent = next(iter(self._waiting))
            if now - self._waiting[parent][0][0] < self._parent_wait:
                return
            self._release_group(parent)

    def _release_group(self, parent: str) -> None:
        children = self._waiting.pop(parent)
        self._waiting_count -= len(children)
        for _, child in children:
            self._emit(child)

    def _emit(self, call: LLMCall) -> None:
        """Emit a span, then the waiting children of it (and theirs), parents first."""
        stack = [call]
        while stack:
            current = stack.pop()
            self._remember(current.id, self._emit_span(current))
            children = self._waiting.pop(current.id, None)
            if children:
                self._waiting_count -= len(children)
                stack.extend(child for _, child in reversed(children))

    def _remember(self, record_id: str, span_context: Any) -> None:
        if self._max_remembered <= 0:
            return
        self._emitted[record_id] = span_context
        if len(self._emitted) > self._max_remembered:
            self._emitted.popitem(last=False)

    def _parent_context(self, call: LLMCall) -> Any:
        trace = self._api.trace
        # An explicit empty context: the worker thread's own current span must never be the parent.
        empty = self._api.context.Context()
        parent = call.parent_id
        if not parent or parent == call.id:
            return empty
        known = self._emitted.get(parent)
        if known is not None:
            return trace.set_span_in_context(trace.NonRecordingSpan(known), empty)
        span_id, trace_id = otel_span_id(parent), otel_trace_id(call.trace_id)
        if span_id is not None and trace_id is not None:
            remote = trace.SpanContext(
                trace_id=trace_id,
                span_id=span_id,
                is_remote=True,
                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
            )
            return trace.set_span_in_context(trace.NonRecordingSpan(remote), empty)
        return empty

    def _emit_span(self, call: LLMCall) -> Any:
        trace = self._api.trace
        start_ns, end_ns = span_times(call)
        kind = trace.SpanKind.INTERNAL if call.operation in INTERNAL_OPERATIONS else trace.SpanKind.CLIENT
        span = self._tracer.start_span(
            span_name(call),
            context=self._parent_context(call),
            kind=kind,
            attributes=span_attributes(call, capture_content=self._capture_content),
            start_time=start_ns,
            record_exception=False,
            set_status_on_exception=False,
        )
        if call.status.value == "error":
            span.set_status(trace.Status(trace.StatusCode.ERROR, error_description(call)))
        span.end(end_time=end_ns)
        return span.get_span_context()

    def _force_flush(self) -> None:
        providers = (
            self._tracer_provider or self._api.trace.get_tracer_provider(),
            self._meter_provider or self._api.metrics.get_meter_provider(),
        )
        for provider in providers:
            force_flush = getattr(provider, "force_flush", None)
            if callable(force_flush):
                force_flush()


__all__ = ["OTelSink", "otel_span_id", "otel_trace_id"]
