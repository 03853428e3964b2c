"""The smaller sections of an `LLMCall` (SPEC §1), each a frozen slotted dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from tokentrail.core.fields import (
    Converter,
    JsonSection,
    as_any,
    as_bool,
    as_int,
    as_number,
    as_str,
    as_str_list,
    as_time,
    compile_to_dict,
    compile_to_json,
    json_text,
    section_from_dict,
    section_to_dict,
    slot_twin,
    value_to_json,
)


class _Section:
    """JSON conversion for flat sections; subclasses declare `_kinds`."""

    __slots__ = ()
    _kinds: ClassVar[dict[str, Converter]]

    def to_dict(self) -> dict[str, Any]:
        return section_to_dict(self)

    def to_json(self) -> str:
        """`to_dict()` as compact JSON text (replaced per class by a compiled version)."""
        return json_text(self.to_dict())

    @classmethod
    def from_dict(cls, data: object, *, path: str | None = None) -> Any:
        return section_from_dict(cls, cls._kinds, data, path or cls._path)  # type: ignore[attr-defined]

    @property
    def is_empty(self) -> bool:
        return not self.to_dict()


@dataclass(frozen=True, slots=True)
class ErrorInfo(_Section):
    type: str
    message: str | None = None
    http_status: int | None = None

    _path: ClassVar[str] = "error"
    _kinds: ClassVar[dict[str, Converter]] = {"type": as_str, "message": as_str, "http_status": as_int}


@dataclass(frozen=True, slots=True)
class PerformanceMetrics(_Section):
    total_duration_ms: float | None = None
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    queue_time_ms: float | None = None
    processing_time_ms: float | None = None

    _path: ClassVar[str] = "performance_metrics"
    _kinds: ClassVar[dict[str, Converter]] = {
        "total_duration_ms": as_number,
        "time_to_first_token_ms": as_number,
        "tokens_per_second": as_number,
        "queue_time_ms": as_number,
        "processing_time_ms": as_number,
    }


@dataclass(frozen=True, slots=True)
class RequestParameters(_Section):
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool | None = None
    service_tier: str | None = None

    _path: ClassVar[str] = "request_parameters"
    _kinds: ClassVar[dict[str, Converter]] = {
        "temperature": as_number,
        "top_p": as_number,
        "top_k": as_int,
        "max_tokens": as_int,
        "frequency_penalty": as_number,
        "presence_penalty": as_number,
        "stop_sequences": as_str_list,
        # seeds may be negative in some SDKs, so any integer
        "seed": lambda f, v: as_number(f, v) if not isinstance(v, int) else v,
        "n": as_int,
        "stream": as_bool,
        "service_tier": as_str,
    }


@dataclass(frozen=True, slots=True)
class ResponseMetadata(_Section):
    finish_reason: str | None = None
    model_version: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    response_id: str | None = None

    _path: ClassVar[str] = "response_metadata"
    _kinds: ClassVar[dict[str, Converter]] = {
        "finish_reason": as_str,
        "model_version": as_str,
        "request_id": as_str,
        "client_request_id": as_str,
        "system_fingerprint": as_str,
        "service_tier": as_str,
        "response_id": as_str,
    }


@dataclass(frozen=True, slots=True)
class RateLimitInfo(_Section):
    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset_at: datetime | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset_at: datetime | None = None
    retry_after_ms: float | None = None

    _path: ClassVar[str] = "rate_limit_info"
    _kinds: ClassVar[dict[str, Converter]] = {
        "requests_limit": as_int,
        "requests_remaining": as_int,
        "requests_reset_at": as_time,
        "tokens_limit": as_int,
        "tokens_remaining": as_int,
        "tokens_reset_at": as_time,
        "retry_after_ms": as_number,
    }


@dataclass(frozen=True, slots=True)
class Attribution(_Section):
    project: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tenant_id: str | None = None
    feature: str | None = None
    environment: str | None = None
    service_name: str | None = None
    workflow: str | None = None
    event_id: str | None = None
    customer_id: str | None = None

    _path: ClassVar[str] = "attribution"
    _kinds: ClassVar[dict[str, Converter]] = {
        name: as_str
        for name in (
            "project",
            "user_id",
            "session_id",
            "tenant_id",
            "feature",
            "environment",
            "service_name",
            "workflow",
            "event_id",
            "customer_id",
        )
    }


@dataclass(frozen=True, slots=True)
class Content(_Section):
    messages: Any = None
    result: Any = None

    _path: ClassVar[str] = "content"
    _kinds: ClassVar[dict[str, Converter]] = {"messages": as_any, "result": as_any}


ATTRIBUTION_FIELDS: tuple[str, ...] = tuple(Attribution._kinds)

# Each section's `to_dict` and `to_json` compiled for its own fields (the same results as
# `section_to_dict` and encoding it; records are serialised once each, on the per-record path).
JSON_SECTIONS: dict[type, JsonSection] = {
    cls: JsonSection(cls, value_to_json, kinds)
    for cls, kinds in (
        (ErrorInfo, {}),
        (PerformanceMetrics, {}),
        (RequestParameters, {}),
        (ResponseMetadata, {}),
        (RateLimitInfo, {"requests_reset_at": "time", "tokens_reset_at": "time"}),
        (Attribution, {}),
        (Content, {}),
    )
}
for _cls, _spec in JSON_SECTIONS.items():
    _cls.to_dict = compile_to_dict(_cls, _spec.kinds, value_to_json)  # type: ignore[attr-defined]
    _cls.to_json = compile_to_json(_cls, _spec.kinds, value_to_json)  # type: ignore[attr-defined]
del _cls, _spec


# ---- fast constructors ---------------------------------------------------------------------
# The trackers build these for every record. A frozen dataclass's `__init__` stores each field
# through `object.__setattr__`; filling a same-layout twin and switching its class gives the
# identical object for a fraction of that. The sections have no `__post_init__`, so there is
# nothing to check that the dataclass constructor would have checked. The field lists are
# compared at import so that a new field cannot leave these half-initialised.

if PerformanceMetrics.__slots__ != (  # type: ignore[attr-defined]
    "total_duration_ms", "time_to_first_token_ms", "tokens_per_second", "queue_time_ms", "processing_time_ms",
):  # fmt: skip
    raise TypeError("PerformanceMetrics fields changed: update build_performance")

_PerformanceSlots = slot_twin(PerformanceMetrics)


def build_performance(
    total_duration_ms: float | None, time_to_first_token_ms: float | None, tokens_per_second: float | None
) -> PerformanceMetrics:
    """`PerformanceMetrics(total_duration_ms, time_to_first_token_ms, tokens_per_second)`."""
    obj = _PerformanceSlots()
    obj.total_duration_ms = total_duration_ms  # type: ignore[attr-defined]
    obj.time_to_first_token_ms = time_to_first_token_ms  # type: ignore[attr-defined]
    obj.tokens_per_second = tokens_per_second  # type: ignore[attr-defined]
    obj.queue_time_ms = None  # type: ignore[attr-defined]
    obj.processing_time_ms = None  # type: ignore[attr-defined]
    obj.__class__ = PerformanceMetrics
    return obj  # type: ignore[return-value]


if ResponseMetadata.__slots__ != (  # type: ignore[attr-defined]
    "finish_reason", "model_version", "request_id", "client_request_id", "system_fingerprint", "service_tier",
    "response_id",
):  # fmt: skip
    raise TypeError("ResponseMetadata fields changed: update build_response_metadata")

_ResponseSlots = slot_twin(ResponseMetadata)
_RESPONSE_KEYS = frozenset(ResponseMetadata.__slots__)  # type: ignore[attr-defined]


def build_response_metadata(values: dict[str, Any]) -> ResponseMetadata:
    """`ResponseMetadata(**values)` (an unknown key raises its TypeError, as there)."""
    if not values.keys() <= _RESPONSE_KEYS:
        return ResponseMetadata(**values)
    obj = _ResponseSlots()
    get = values.get
    obj.finish_reason = get("finish_reason")  # type: ignore[attr-defined]
    obj.model_version = get("model_version")  # type: ignore[attr-defined]
    obj.request_id = get("request_id")  # type: ignore[attr-defined]
    obj.client_request_id = get("client_request_id")  # type: ignore[attr-defined]
    obj.system_fingerprint = get("system_fingerprint")  # type: ignore[attr-defined]
    obj.service_tier = get("service_tier")  # type: ignore[attr-defined]
    obj.response_id = get("response_id")  # type: ignore[attr-defined]
    obj.__class__ = ResponseMetadata
    return obj  # type: ignore[return-value]
