"""What every tracked operation shares: identity, parenting, timing, attribution, metadata,
errors, and the sync/async context-manager protocol guarded so that tracking never breaks
the host. `LLMTracker`, `ToolTracker` and workflow runs build on it."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from types import MappingProxyType, TracebackType
from typing import Any, Self

from tokentrail.core import (
    ATTRIBUTION_FIELDS,
    Attribution,
    CallStatus,
    ErrorInfo,
    LLMCall,
    ModelOperation,
    ValidationError,
    uuid7,
)
from tokentrail.core.attribution import SpanContext, current_frame, current_span, new_trace_id, pop_span, push_span
from tokentrail.core.settings import Settings
from tokentrail.tracking import clock as _clock
from tokentrail.tracking import runtime as _runtime
from tokentrail.tracking.guard import guard

_MAX_MESSAGE = 2000  # error messages are clipped: records stay bounded
_NOT_STARTED, _RUNNING, _FINISHED = 0, 1, 2


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a metadata value, so one odd value cannot fail a sink's batch."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return jsonable(value.value, depth)
    if isinstance(value, datetime):
        return value.isoformat()
    if depth < 8:
        if isinstance(value, Mapping):
            return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [jsonable(v, depth + 1) for v in value]
    return str(value)


def error_info(exc_or_type: BaseException | type[BaseException] | str, message: str | None = None) -> ErrorInfo:
    """`ErrorInfo` from an exception, an exception class or a type name."""
    status: int | None = None
    if isinstance(exc_or_type, BaseException):
        type_name = type(exc_or_type).__qualname__
        if message is None:
            text = str(exc_or_type)
            message = text or None
        code = getattr(exc_or_type, "status_code", None)
        if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
            status = code
    elif isinstance(exc_or_type, type):
        type_name = exc_or_type.__qualname__
    else:
        type_name = str(exc_or_type) or "error"
    if message is not None and len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return ErrorInfo(type=type_name, message=message, http_status=status)


def fill_attribution(attribution: Attribution | None, settings: Settings) -> Attribution | None:
    """Context attribution, with the settings' service/environment/project where it has none."""
    if attribution is None:
        attribution = _NO_ATTRIBUTION
    changes: dict[str, str] = {}
    if attribution.service_name is None and settings.service_name:
        changes["service_name"] = settings.service_name
    if attribution.environment is None and settings.environment:
        changes["environment"] = settings.environment
    if attribution.project is None and settings.project:
        changes["project"] = settings.project
    if changes:
        return replace(attribution, **changes)
    # emptiness by attribute reads: this runs for every record, dataclasses.fields() is slow
    for name in ATTRIBUTION_FIELDS:
        if getattr(attribution, name) is not None:
            return attribution
    return None


_NO_ATTRIBUTION = Attribution()


def _operation(value: ModelOperation | str) -> ModelOperation:
    if isinstance(value, ModelOperation):
        return value
    try:
        return ModelOperation(value)
    except ValueError:
        allowed = ", ".join(op.value for op in ModelOperation)
        raise ValidationError("operation", f"{value!r} is not one of {allowed}") from None


class CostRollup:
    """Running totals of the priced records made inside a workflow (and its nested ones)."""

    __slots__ = ("calls", "lock", "parent", "total", "unpriced")

    def __init__(self, parent: CostRollup | None) -> None:
        self.parent = parent
        self.lock = threading.Lock()
        self.total = Decimal(0)
        self.calls = 0
        self.unpriced = 0

    def add(self, record: LLMCall) -> None:
        cost = record.cost_metrics
        if cost is None:
            return  # tools and workflows carry no cost of their own
        node: CostRollup | None = self
        while node is not None:
            with node.lock:
                node.calls += 1
                if cost.total_cost is None:
                    node.unpriced += 1
                else:
                    node.total += cost.total_cost
            node = node.parent


ROLLUP: ContextVar[CostRollup | None] = ContextVar("tokentrail_rollup", default=None)


class Operation:
    """Base of the trackers. Subclasses implement `_record(common) -> LLMCall`."""

    __slots__ = (
        "_attribution",
        "_span_token",
        "_state",
        "_t0",
        "_tags",
        "completed_at",
        "duration_s",
        "error",
        "id",
        "metadata",
        "name",
        "operation",
        "parent_id",
        "record",
        "started_at",
        "trace_id",
    )

    def __init__(self, operation: ModelOperation | str, name: str | None = None) -> None:
        self.operation = ModelOperation.CHAT
        self.metadata: dict[str, Any] = {}
        with guard("operation.init"):
            self.operation = _operation(operation)
        self.name = name
        self.id = uuid7()
        self.trace_id: str | None = None
        self.parent_id: str | None = None
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.duration_s: float | None = None
        self._t0 = 0.0
        self.error: ErrorInfo | None = None
        self._attribution: Attribution | None = None
        self._tags: Mapping[str, Any] = MappingProxyType({})
        self._span_token: Token[SpanContext | None] | None = None
        self._state = _NOT_STARTED
        self.record: LLMCall | None = None  # the emitted record, once finished

    # ---- lifecycle ------------------------------------------------------------------------
    def _begin(self, *, started_at: datetime | None = None, push: bool = True) -> None:
        span = current_span()
        if span is not None:
            self.trace_id, self.parent_id = span.trace_id, span.span_id
        else:
            self.trace_id = new_trace_id()
        self._attribution, self._tags = current_frame()
        clock = _clock.get_clock()
        self.started_at = started_at if started_at is not None else clock.now()
        self._t0 = clock.perf()
        if push:
            self._span_token = push_span(SpanContext(self.trace_id, self.id, self))
        self._state = _RUNNING

    def _end(
        self,
        exc: BaseException | None = None,
        *,
        completed_at: datetime | None = None,
        duration_known: bool = True,
        emit: bool = True,
    ) -> LLMCall | None:
        if self._state != _RUNNING:
            return None
        self._state = _FINISHED
        if self._span_token is not None:
            pop_span(self._span_token)
            self._span_token = None
        if exc is not None and self.error is None:
            self.error = error_info(exc)
        if completed_at is not None:
            assert self.started_at is not None
            self.completed_at = max(completed_at, self.started_at)
            self.duration_s = (self.completed_at - self.started_at).total_seconds() if duration_known else None
        else:
            # durations come from the monotonic clock; completed_at is derived from it so
            # it can never precede started_at when the wall clock steps back
            self.duration_s = max(0.0, _clock.get_clock().perf() - self._t0)
            assert self.started_at is not None
            self.completed_at = self.started_at + timedelta(seconds=self.duration_s)
        settings = _runtime.current_settings()
        record = self._record(settings)
        self.record = record
        if emit:
            _runtime.emit(record)
            rollup = ROLLUP.get()
            if rollup is not None:
                rollup.add(record)
        return record

    def _common(self, settings: Settings) -> dict[str, Any]:
        """The LLMCall fields every kind of operation fills the same way."""
        metadata: dict[str, Any] | None = None
        if self._tags or self.metadata:
            metadata = jsonable({**self._tags, **self.metadata})
        assert self.started_at is not None
        return {
            "id": self.id,
            "operation": self.operation,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "status": CallStatus.ERROR if self.error is not None else CallStatus.OK,
            "error": self.error,
            "attribution": fill_attribution(self._attribution, settings),
            "metadata": metadata,
        }

    def _record(self, settings: Settings) -> LLMCall:
        return LLMCall(**self._common(settings))

    # ---- shared setters -------------------------------------------------------------------
    def set_error(self, exc_or_type: BaseException | type[BaseException] | str, message: str | None = None) -> None:
        """Mark the operation failed (done for you when the block raises)."""
        with guard("set_error"):
            self.error = error_info(exc_or_type, message)

    def add_metadata(self, **kv: Any) -> None:
        """Free-form key/values for the record's `metadata` (later values win)."""
        with guard("add_metadata"):
            self.metadata.update(kv)

    # ---- explicit lifecycle (instrumentation of streams) ------------------------------------
    def start(self, *, push_span: bool = True) -> Self:
        """Begin timing without a `with` block. Streams should pass `push_span=False`: the
        call outlives the code that created it, so it must not become the parent of whatever
        runs next in that context."""
        with guard("track.start"):
            self._begin(push=push_span)
        return self

    def finish(self, exc: BaseException | None = None) -> LLMCall | None:
        """End the operation (recording `exc` as its error, if given) and emit its record once."""
        with guard("track.finish"):
            return self._end(exc)
        return None

    @property
    def finished(self) -> bool:
        return self._state == _FINISHED

    # ---- context-manager protocol ---------------------------------------------------------
    def __enter__(self) -> Self:
        with guard("track.enter"):
            self._begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # returns None: the host's exception, if any, propagates untouched
        with guard("track.exit"):
            self._end(exc)

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


__all__ = ["ROLLUP", "CostRollup", "Operation", "error_info", "fill_attribution", "jsonable"]
