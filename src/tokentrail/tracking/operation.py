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
from tokentrail.core.attribution import (
    SpanContext,
    current_frame,
    current_span,
    make_span,
    new_trace_id,
    pop_span,
    push_span,
)
from tokentrail.core.settings import Settings
from tokentrail.tracking import clock as _clock
from tokentrail.tracking import runtime as _runtime
from tokentrail.tracking.guard import record_internal_error, reraise_enabled

_MAX_MESSAGE = 2000  # error messages are clipped: records stay bounded
_NOT_STARTED, _RUNNING, _FINISHED = 0, 1, 2


def failed(where: str, exc: Exception) -> bool:
    """What `guard(where)` does with an exception, for a `try` around a hook instead of a
    `with guard(...)` block (a quarter of a microsecond less per hook on every tracked call):
    count and log it, and return True when it must propagate (`TOKENTRAIL_TESTING`)."""
    record_internal_error(where, exc)
    return reraise_enabled()


_AS_IS: frozenset[type] = frozenset({str, int, bool, type(None)})


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a metadata value, so one odd value cannot fail a sink's batch."""
    kind = type(value)
    # exact plain types first (every record's metadata and provider_specific pass through here)
    if kind in _AS_IS:
        return value
    if kind is dict and depth < 8:
        return {
            key if type(key) is str else str(key): item if type(item) in _AS_IS else jsonable(item, depth + 1)
            for key, item in value.items()
        }
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
    global _filled
    # Every record of an `attribution()` block starts from the same frozen Attribution and the
    # same frozen Settings, so the answer is remembered for that pair (held strongly, so the
    # identities cannot be reused). The tuple is replaced whole: safe across threads.
    last = _filled
    if last[0] is attribution and last[1] is settings:
        return last[2]
    result = _fill_attribution(attribution, settings)
    _filled = (attribution, settings, result)
    return result


def _fill_attribution(attribution: Attribution | None, settings: Settings) -> Attribution | None:
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
_filled: tuple[Any, Any, Attribution | None] = (object(), object(), None)


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
        self.metadata: dict[str, Any] = {}
        if type(operation) is ModelOperation:
            self.operation = operation
        else:
            self.operation = ModelOperation.CHAT
            try:
                self.operation = _operation(operation)
            except Exception as failure:
                if failed("operation.init", failure):
                    raise
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
            self._span_token = push_span(make_span(self.trace_id, self.id, self))
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
            duration = _clock.get_clock().perf() - self._t0
            if not duration > 0.0:
                duration = 0.0
            self.duration_s = duration
            assert self.started_at is not None
            self.completed_at = self.started_at + timedelta(seconds=duration)
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
        try:
            self.error = error_info(exc_or_type, message)
        except Exception as failure:
            if failed("set_error", failure):
                raise

    def add_metadata(self, **kv: Any) -> None:
        """Free-form key/values for the record's `metadata` (later values win)."""
        try:
            self.metadata.update(kv)
        except Exception as failure:
            if failed("add_metadata", failure):
                raise

    # ---- explicit lifecycle (instrumentation of streams) ------------------------------------
    def start(self, *, push_span: bool = True) -> Self:
        """Begin timing without a `with` block. Streams should pass `push_span=False`: the
        call outlives the code that created it, so it must not become the parent of whatever
        runs next in that context."""
        try:
            self._begin(push=push_span)
        except Exception as failure:
            if failed("track.start", failure):
                raise
        return self

    def finish(self, exc: BaseException | None = None) -> LLMCall | None:
        """End the operation (recording `exc` as its error, if given) and emit its record once."""
        try:
            return self._end(exc)
        except Exception as failure:
            if failed("track.finish", failure):
                raise
        return None

    @property
    def finished(self) -> bool:
        return self._state == _FINISHED

    # ---- context-manager protocol ---------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            self._begin()
        except Exception as failure:
            if failed("track.enter", failure):
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # returns None: the host's exception, if any, propagates untouched
        try:
            self._end(exc)
        except Exception as failure:
            if failed("track.exit", failure):
                raise

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


__all__ = ["ROLLUP", "CostRollup", "Operation", "error_info", "failed", "fill_attribution", "jsonable"]
