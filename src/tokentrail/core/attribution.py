"""Who caused a call, and which workflow or agent step it belongs to, carried on contextvars.

`attribution(...)` works like faciliter's `LoggingContext`: every record made inside the block
carries the values. Blocks nest (inner values win, outer ones remain) and, because the state
lives in contextvars, it follows asyncio tasks and threads started with
`contextvars.copy_context()`. The span context (trace id + the id of the enclosing
workflow/agent/tool record) parents records to their enclosing operation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields
from types import MappingProxyType, TracebackType
from typing import Any

from tokentrail.core.errors import ValidationError
from tokentrail.core.fields import slot_twin
from tokentrail.core.sections import ATTRIBUTION_FIELDS, Attribution

# Settings-level values (service_name, environment, project) are filled by the tracker, not
# set here; `service_name` is still accepted so a block can override it.
_EMPTY_TAGS: MappingProxyType[str, Any] = MappingProxyType({})
_EMPTY = Attribution()


@dataclass(frozen=True, slots=True)
class _Frame:
    """The merged attribution in force: one object, so a read is a single ContextVar.get()."""

    attribution: Attribution
    tags: MappingProxyType[str, Any]


_FRAME: ContextVar[_Frame | None] = ContextVar("tokentrail_attribution", default=None)


def current_attribution() -> tuple[Attribution, dict[str, Any]]:
    """The attribution and free-form tags in force here (empty values when none)."""
    frame = _FRAME.get()
    if frame is None:
        return _EMPTY, {}
    return frame.attribution, dict(frame.tags)


def current_frame() -> tuple[Attribution, MappingProxyType[str, Any]]:
    """Like `current_attribution` but without copying the tags (for the record builder)."""
    frame = _FRAME.get()
    if frame is None:
        return _EMPTY, _EMPTY_TAGS
    return frame.attribution, frame.tags


def _merge(outer: _Frame | None, values: dict[str, str], tags: dict[str, Any]) -> _Frame:
    base = outer.attribution if outer is not None else _EMPTY
    merged = {f.name: getattr(base, f.name) for f in fields(Attribution)}
    merged.update(values)
    all_tags = dict(outer.tags) if outer is not None else {}
    all_tags.update(tags)
    return _Frame(Attribution(**merged), MappingProxyType(all_tags))


class attribution:
    """Attach attribution to every record made inside the block (sync `with` or `async with`).

    Known keys (`user_id`, `session_id`, `tenant_id`, `feature`, `project`, `environment`,
    `customer_id`, `event_id`, `workflow`, `service_name`) fill the record's `attribution`
    section; any other keyword is a tag and lands in the record's `metadata`. `None` leaves
    an outer value in place.
    """

    __slots__ = ("_frame", "_tokens")

    def __init__(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tenant_id: str | None = None,
        feature: str | None = None,
        project: str | None = None,
        environment: str | None = None,
        customer_id: str | None = None,
        event_id: str | None = None,
        workflow: str | None = None,
        service_name: str | None = None,
        **tags: Any,
    ) -> None:
        given = {
            "user_id": user_id,
            "session_id": session_id,
            "tenant_id": tenant_id,
            "feature": feature,
            "project": project,
            "environment": environment,
            "customer_id": customer_id,
            "event_id": event_id,
            "workflow": workflow,
            "service_name": service_name,
        }
        values: dict[str, str] = {}
        for key, value in given.items():
            if value is None:
                continue
            if not isinstance(value, str):
                # ids are often ints in applications; store their text, refuse anything else
                if isinstance(value, int) and not isinstance(value, bool):
                    value = str(value)
                else:
                    raise ValidationError(key, f"must be a string, got {type(value).__name__}")
            values[key] = value
        self._frame = (values, {k: v for k, v in tags.items() if v is not None})
        self._tokens: list[Token[_Frame | None]] = []

    def __enter__(self) -> Attribution:
        values, tags = self._frame
        frame = _merge(_FRAME.get(), values, tags)
        self._tokens.append(_FRAME.set(frame))
        return frame.attribution

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _reset(_FRAME, self._tokens.pop())

    async def __aenter__(self) -> Attribution:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _reset(var: ContextVar[Any], token: Token[Any]) -> None:
    try:
        var.reset(token)
    except ValueError:
        # The block was left in another context than it was entered in (a generator resumed
        # elsewhere); restore the previous value by hand rather than fail the host.
        var.set(token.old_value if token.old_value is not Token.MISSING else None)


# ---- span context: parents records to the workflow / agent / tool around them ------------


@dataclass(frozen=True, slots=True)
class SpanContext:
    """The enclosing operation: its trace, its record id, and the live object that owns it."""

    trace_id: str
    span_id: str
    owner: Any = None  # the tracker or workflow run that opened it (for set_llm_attributes, outcomes)


_SPAN: ContextVar[SpanContext | None] = ContextVar("tokentrail_span", default=None)

if SpanContext.__slots__ != ("trace_id", "span_id", "owner"):  # type: ignore[attr-defined]
    raise TypeError("SpanContext fields changed: update make_span")
_SpanSlots = slot_twin(SpanContext)


def make_span(trace_id: str, span_id: str, owner: Any = None) -> SpanContext:
    """`SpanContext(trace_id, span_id, owner)` without the frozen `__init__`'s per-field
    `object.__setattr__` (every tracked call opens one)."""
    obj = _SpanSlots()
    obj.trace_id = trace_id  # type: ignore[attr-defined]
    obj.span_id = span_id  # type: ignore[attr-defined]
    obj.owner = owner  # type: ignore[attr-defined]
    obj.__class__ = SpanContext
    return obj  # type: ignore[return-value]


# The ContextVar's own methods, not wrappers around them: they run twice per tracked call.
current_span: Callable[[], SpanContext | None] = _SPAN.get
"""The enclosing operation's span context, or None."""
push_span: Callable[[SpanContext], Token[SpanContext | None]] = _SPAN.set
"""Make `span` the current one; returns the token `pop_span` takes."""


def pop_span(token: Token[SpanContext | None]) -> None:
    _reset(_SPAN, token)


_randbits = random.getrandbits  # fork-safe: `random` reseeds itself in a forked child


def new_trace_id() -> str:
    """32 lowercase hex digits, the OpenTelemetry trace id form (never all zeros)."""
    return "%032x" % (_randbits(128) or 1)  # a third of os.urandom(16).hex()


__all__ = [
    "ATTRIBUTION_FIELDS",
    "SpanContext",
    "attribution",
    "current_attribution",
    "current_frame",
    "current_span",
    "make_span",
    "new_trace_id",
    "pop_span",
    "push_span",
]
