"""`LLMCall`: one record per tracked operation; its JSON form is the SDK-to-server wire format."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tokentrail.core.cost import CostBreakdown
from tokentrail.core.errors import ValidationError
from tokentrail.core.fields import as_bool, as_dict, as_int, as_str, as_time, time_to_json
from tokentrail.core.names import ModelOperation
from tokentrail.core.sections import (
    Attribution,
    Content,
    ErrorInfo,
    PerformanceMetrics,
    RateLimitInfo,
    RequestParameters,
    ResponseMetadata,
)
from tokentrail.core.usage import TokenUsage, Units


class CallStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


def uuid7() -> str:
    """A UUIDv7 string: millisecond time prefix, so ids sort by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, StrEnum):
                out[f.name] = value.value
            elif isinstance(value, datetime):
                out[f.name] = time_to_json(value)
            elif hasattr(value, "to_dict"):
                section = value.to_dict()
                if section:
                    out[f.name] = section
            else:
                out[f.name] = value
        return out

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
