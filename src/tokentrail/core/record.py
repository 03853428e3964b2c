"""`LLMCall`: one record per tracked operation; its JSON form is the SDK-to-server wire format."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from enum import StrEnum
from time import time_ns
from typing import Any

from tokentrail.core.cost import COST_JSON, CostBreakdown
from tokentrail.core.errors import ValidationError
from tokentrail.core.fields import (
    OMIT,
    as_bool,
    as_dict,
    as_int,
    as_str,
    as_time,
    compile_to_dict,
    compile_to_json,
    slot_twin,
    time_to_json,
)
from tokentrail.core.names import ModelOperation
from tokentrail.core.sections import (
    JSON_SECTIONS,
    Attribution,
    Content,
    ErrorInfo,
    PerformanceMetrics,
    RateLimitInfo,
    RequestParameters,
    ResponseMetadata,
)
from tokentrail.core.usage import TOKEN_USAGE_JSON, UNITS_JSON, TokenUsage, Units


class CallStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


# Ids need uniqueness, not secrecy: the module's Mersenne Twister (seeded from os.urandom,
# and reseeded in a forked child by `random` itself) costs a tenth of an os.urandom syscall.
_randbits = random.getrandbits
# the time part of the id changes once a millisecond: (ms, "tttttttt-tttt-7"), swapped whole
_time_prefix: tuple[int, str] = (-1, "")


def uuid7() -> str:
    """A UUIDv7 string (RFC 9562): millisecond time prefix, so ids sort by creation time,
    then version 7, 12 random bits, the variant bits 10 and 62 random bits."""
    global _time_prefix
    ms = (time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF
    cached = _time_prefix
    if cached[0] != ms:
        cached = _time_prefix = (ms, "%08x-%04x-7" % (ms >> 16, ms & 0xFFFF))  # noqa: UP031
    rand = _randbits(74)
    h = "%018x" % (rand & 0xFF_FFFF_FFFF_FFFF_FFFF)  # 72 bits, 18 hex digits
    # rand_a (12 bits) | variant 0b10 + 2 bits, as one of 8 9 a b, then 12 bits | 48 bits
    return f"{cached[1]}{h[:3]}-{_VARIANT[rand >> 72]}{h[3:6]}-{h[6:]}"


_VARIANT = "89ab"


def utcnow() -> datetime:
    return datetime.now(UTC)


# section name -> its class, for the nested parts of the record
_SECTIONS: dict[str, Any] = {
    "error": ErrorInfo,
    "token_usage": TokenUsage,
    "units": Units,
    "cost_metrics": CostBreakdown,
    "performance_metrics": PerformanceMetrics,
    "request_parameters": RequestParameters,
    "response_metadata": ResponseMetadata,
    "rate_limit_info": RateLimitInfo,
    "attribution": Attribution,
    "content": Content,
}

_SCALARS: dict[str, Any] = {
    "id": as_str,
    "trace_id": as_str,
    "parent_id": as_str,
    "provider": as_str,
    "request_model": as_str,
    "provider_model": as_str,
    "name": as_str,
    "started_at": as_time,
    "completed_at": as_time,
    "metadata": as_dict,
    "provider_specific": as_dict,
    "response_schema": as_dict,
    "streaming": as_bool,
    "cache_hit": as_bool,
    "attempt": as_int,
    "estimated": as_bool,
}


@dataclass(frozen=True, slots=True)
class LLMCall:
    """One tracked operation. Sections are attributes; absent values are `None`."""

    id: str
    operation: ModelOperation
    started_at: datetime
    provider: str | None = None
    request_model: str | None = None
    provider_model: str | None = None
    name: str | None = None  # tool, agent or workflow name
    status: CallStatus = CallStatus.OK
    error: ErrorInfo | None = None
    completed_at: datetime | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    token_usage: TokenUsage | None = None
    units: Units | None = None
    cost_metrics: CostBreakdown | None = None
    performance_metrics: PerformanceMetrics | None = None
    request_parameters: RequestParameters | None = None
    response_metadata: ResponseMetadata | None = None
    rate_limit_info: RateLimitInfo | None = None
    attribution: Attribution | None = None
    metadata: dict[str, Any] | None = None
    provider_specific: dict[str, Any] | None = None
    response_schema: dict[str, Any] | None = None
    streaming: bool | None = None
    cache_hit: bool | None = None
    attempt: int | None = None
    estimated: bool | None = None
    content: Content | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValidationError("id", "must be a non-empty string")
        if not isinstance(self.operation, ModelOperation):
            try:
                object.__setattr__(self, "operation", ModelOperation(self.operation))
            except ValueError:
                allowed = ", ".join(op.value for op in ModelOperation)
                raise ValidationError("operation", f"{self.operation!r} is not one of {allowed}") from None
        if not isinstance(self.status, CallStatus):
            try:
                object.__setattr__(self, "status", CallStatus(self.status))
            except ValueError:
                raise ValidationError("status", f"{self.status!r} is not 'ok' or 'error'") from None
        if not isinstance(self.started_at, datetime):
            raise ValidationError("started_at", "must be a datetime")
        if self.completed_at is not None and self.completed_at < self.started_at:
            raise ValidationError("completed_at", "is before started_at")
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                raise ValidationError(name, f"must be a {cls.__name__}, got {type(value).__name__}")

    @classmethod
    def new(cls, operation: ModelOperation | str = ModelOperation.CHAT, **kwargs: Any) -> LLMCall:
        """A record with a fresh UUIDv7 id, started now unless `started_at` is given."""
        kwargs.setdefault("id", uuid7())
        kwargs.setdefault("started_at", utcnow())
        return cls(operation=operation, **kwargs)  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> LLMCall:
        return replace(self, **changes)

    @property
    def duration_ms(self) -> float | None:
        if self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds() * 1000.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: absent values omitted, money as decimal strings, times ISO 8601 UTC."""
        return _to_dict(self)

    def to_json(self) -> str:
        """`to_dict()` as compact JSON text (`tokentrail.core.columns.record_json` of it),
        written straight from the fields: the text every sink stores or sends."""
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: object) -> LLMCall:
        """Validate a JSON record; a bad value raises `ValidationError` naming its field."""
        if not isinstance(data, Mapping):
            raise ValidationError("record", f"must be an object, got {type(data).__name__}")
        for required in ("id", "operation", "started_at"):
            if data.get(required) is None:
                raise ValidationError(required, "is required")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            if key in _SECTIONS:
                kwargs[key] = _SECTIONS[key].from_dict(value, path=key)
            elif key in _SCALARS:
                kwargs[key] = _SCALARS[key](key, value)
            elif key in ("operation", "status"):
                kwargs[key] = as_str(key, value)
            else:
                raise ValidationError(key, "is not a record field")
        return cls(**kwargs)


def _json_value(value: Any) -> Any:
    """The general rule of `LLMCall.to_dict` for one present value (`OMIT`: an empty section)."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return time_to_json(value)
    if hasattr(value, "to_dict"):
        section = value.to_dict()
        return section if section else OMIT
    return value


_KINDS = {"operation": "enum", "status": "enum", "started_at": "time", "completed_at": "time"} | dict.fromkeys(
    _SECTIONS, "section"
)
_to_dict = compile_to_dict(
    LLMCall, _KINDS, _json_value, enum_types=(ModelOperation, CallStatus), section_types=tuple(_SECTIONS.values())
)
# Sections are written inline; the attribution object repeats for every record of an
# `attribution()` block (the trackers reuse it), so its text is kept while it does.
_INLINE = {
    name: {TokenUsage: TOKEN_USAGE_JSON, Units: UNITS_JSON, CostBreakdown: COST_JSON}.get(cls) or JSON_SECTIONS[cls]
    for name, cls in _SECTIONS.items()
}
_INLINE["attribution"] = dc_replace(_INLINE["attribution"], remember=True)
_to_json = compile_to_json(
    LLMCall,
    _KINDS,
    _json_value,
    enum_types=(ModelOperation, CallStatus),
    section_types=tuple(_SECTIONS.values()),
    inline=_INLINE,
)


# ---- fast construction ---------------------------------------------------------------------

_CallSlots = slot_twin(LLMCall)

# `build_call` assigns every slot by name; a new LLMCall field must be added there too.
if LLMCall.__slots__ != (  # type: ignore[attr-defined]
    "id", "operation", "started_at", "provider", "request_model", "provider_model", "name", "status", "error",
    "completed_at", "trace_id", "parent_id", "token_usage", "units", "cost_metrics", "performance_metrics",
    "request_parameters", "response_metadata", "rate_limit_info", "attribution", "metadata",
    "provider_specific", "response_schema", "streaming", "cache_hit", "attempt", "estimated", "content",
):  # fmt: skip
    raise TypeError("LLMCall fields changed: update build_call")


def build_call(
    id: str,
    operation: ModelOperation,
    started_at: datetime,
    provider: str | None,
    request_model: str | None,
    provider_model: str | None,
    name: str | None,
    status: CallStatus,
    error: ErrorInfo | None,
    completed_at: datetime | None,
    trace_id: str | None,
    parent_id: str | None,
    token_usage: TokenUsage | None,
    units: Units | None,
    cost_metrics: CostBreakdown | None,
    performance_metrics: PerformanceMetrics | None,
    request_parameters: RequestParameters | None,
    response_metadata: ResponseMetadata | None,
    rate_limit_info: RateLimitInfo | None,
    attribution: Attribution | None,
    metadata: dict[str, Any] | None,
    provider_specific: dict[str, Any] | None,
    response_schema: dict[str, Any] | None,
    streaming: bool | None,
    cache_hit: bool | None,
    attempt: int | None,
    estimated: bool | None,
    content: Content | None,
    /,
) -> LLMCall:
    """Exactly `LLMCall(...)` with these values, in field order, at a fifth of the cost; the
    trackers build every record with it.

    The dataclass `__init__` of a frozen class stores each of the 28 fields through
    `object.__setattr__`, and `__post_init__` reads them back through a loop. Here the values
    that `__post_init__` would accept unchanged (enum members already, a datetime start, a
    completion not before it, sections of their exact class) are stored straight into the
    slots. Anything else, including what `__post_init__` would convert or reject, goes through
    `LLMCall(...)` itself, so the result and any `ValidationError` are the same. Positional
    only: matching 28 keyword arguments costs CPython about a microsecond by itself.
    """
    if not (
        type(id) is str
        and id
        and type(operation) is ModelOperation
        and type(status) is CallStatus
        and type(started_at) is datetime
        and (completed_at is None or (type(completed_at) is datetime and not completed_at < started_at))
        and (error is None or type(error) is ErrorInfo)
        and (token_usage is None or type(token_usage) is TokenUsage)
        and (units is None or type(units) is Units)
        and (cost_metrics is None or type(cost_metrics) is CostBreakdown)
        and (performance_metrics is None or type(performance_metrics) is PerformanceMetrics)
        and (request_parameters is None or type(request_parameters) is RequestParameters)
        and (response_metadata is None or type(response_metadata) is ResponseMetadata)
        and (rate_limit_info is None or type(rate_limit_info) is RateLimitInfo)
        and (attribution is None or type(attribution) is Attribution)
        and (content is None or type(content) is Content)
    ):
        return LLMCall(
            id=id, operation=operation, started_at=started_at, provider=provider, request_model=request_model,
            provider_model=provider_model, name=name, status=status, error=error, completed_at=completed_at,
            trace_id=trace_id, parent_id=parent_id, token_usage=token_usage, units=units, cost_metrics=cost_metrics,
            performance_metrics=performance_metrics, request_parameters=request_parameters,
            response_metadata=response_metadata, rate_limit_info=rate_limit_info, attribution=attribution,
            metadata=metadata, provider_specific=provider_specific, response_schema=response_schema,
            streaming=streaming, cache_hit=cache_hit, attempt=attempt, estimated=estimated, content=content,
        )  # fmt: skip
    obj = _CallSlots()
    obj.id = id  # type: ignore[attr-defined]
    obj.operation = operation  # type: ignore[attr-defined]
    obj.started_at = started_at  # type: ignore[attr-defined]
    obj.provider = provider  # type: ignore[attr-defined]
    obj.request_model = request_model  # type: ignore[attr-defined]
    obj.provider_model = provider_model  # type: ignore[attr-defined]
    obj.name = name  # type: ignore[attr-defined]
    obj.status = status  # type: ignore[attr-defined]
    obj.error = error  # type: ignore[attr-defined]
    obj.completed_at = completed_at  # type: ignore[attr-defined]
    obj.trace_id = trace_id  # type: ignore[attr-defined]
    obj.parent_id = parent_id  # type: ignore[attr-defined]
    obj.token_usage = token_usage  # type: ignore[attr-defined]
    obj.units = units  # type: ignore[attr-defined]
    obj.cost_metrics = cost_metrics  # type: ignore[attr-defined]
    obj.performance_metrics = performance_metrics  # type: ignore[attr-defined]
    obj.request_parameters = request_parameters  # type: ignore[attr-defined]
    obj.response_metadata = response_metadata  # type: ignore[attr-defined]
    obj.rate_limit_info = rate_limit_info  # type: ignore[attr-defined]
    obj.attribution = attribution  # type: ignore[attr-defined]
    obj.metadata = metadata  # type: ignore[attr-defined]
    obj.provider_specific = provider_specific  # type: ignore[attr-defined]
    obj.response_schema = response_schema  # type: ignore[attr-defined]
    obj.streaming = streaming  # type: ignore[attr-defined]
    obj.cache_hit = cache_hit  # type: ignore[attr-defined]
    obj.attempt = attempt  # type: ignore[attr-defined]
    obj.estimated = estimated  # type: ignore[attr-defined]
    obj.content = content  # type: ignore[attr-defined]
    obj.__class__ = LLMCall
    return obj  # type: ignore[return-value]
