"""The call detail page's content: every section of a stored record, in a fixed order, each
field written for its kind (exact money, counts, durations, times). Fields this module does
not know yet are still shown, after the known ones, so nothing stored is ever hidden."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokentrail.server.dashboard.format import count, duration_ms, timestamp, usd, value

# section key -> (title, known fields in display order)
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("token_usage", "Tokens", (
        "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
        "reasoning_tokens", "audio_input_tokens", "audio_output_tokens",
    )),
    ("units", "Units", ("pages", "images", "characters", "seconds", "requests", "searches")),
    ("cost_metrics", "Cost", (
        "total_cost", "input_cost", "cache_read_cost", "cache_write_cost", "output_cost", "other_cost",
        "currency", "pricing_status", "price_version", "input_price_per_1k", "output_price_per_1k",
        "provider_reported_cost", "computed_cost", "price_source", "priced_model", "reason",
    )),
    ("performance_metrics", "Performance", (
        "total_duration_ms", "time_to_first_token_ms", "tokens_per_second", "queue_time_ms", "processing_time_ms",
    )),
    ("request_parameters", "Request parameters", (
        "temperature", "top_p", "top_k", "max_tokens", "frequency_penalty", "presence_penalty",
        "stop_sequences", "seed", "n", "stream", "service_tier",
    )),
    ("response_metadata", "Response metadata", (
        "finish_reason", "model_version", "request_id", "client_request_id", "system_fingerprint",
        "service_tier", "response_id",
    )),
    ("rate_limit_info", "Rate limits", (
        "requests_limit", "requests_remaining", "requests_reset_at", "tokens_limit", "tokens_remaining",
        "tokens_reset_at", "retry_after_ms",
    )),
    ("attribution", "Attribution", (
        "project", "user_id", "session_id", "tenant_id", "feature", "environment", "service_name",
        "workflow", "event_id", "customer_id",
    )),
    ("error", "Error", ("type", "message", "http_status")),
)  # fmt: skip
IDENTITY: tuple[str, ...] = (
    "id", "trace_id", "parent_id", "operation", "name", "provider", "request_model", "provider_model",
    "status", "started_at", "completed_at", "streaming", "cache_hit", "attempt", "estimated",
)  # fmt: skip
JSON_SECTIONS: tuple[tuple[str, str], ...] = (
    ("metadata", "Metadata"),
    ("response_schema", "Response schema"),
    ("provider_specific", "Provider-specific"),
    ("content", "Content"),
)
LABELS = {
    "id": "ID",
    "n": "n",
    "input_price_per_1k": "Input price per 1k tokens",
    "output_price_per_1k": "Output price per 1k tokens",
    "top_p": "top_p",
    "top_k": "top_k",
    "request_id": "Request ID (provider)",
    "client_request_id": "Client request ID",
    "response_id": "Response ID",
    "user_id": "User",
    "session_id": "Session",
    "tenant_id": "Tenant",
    "event_id": "Event ID",
    "customer_id": "Customer",
    "trace_id": "Trace ID",
    "parent_id": "Parent ID",
    "tokens_per_second": "Tokens per second",
    "http_status": "HTTP status",
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    text: str
    raw: Any


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    fields: list[Field] = field(default_factory=list)


COUNTS = ("pages", "images", "characters", "requests", "searches")


def label(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    return name.removesuffix("_ms").replace("_", " ").capitalize()  # durations say their unit


def display(name: str, raw: Any) -> str:
    if raw is None:
        return value(raw)
    if name.endswith(("_cost", "_price_per_1k")):
        return usd(raw)
    if (
        isinstance(raw, int)
        and not isinstance(raw, bool)
        and (name.endswith(("_tokens", "_limit", "_remaining")) or name in COUNTS)
    ):
        return count(raw)
    if name.endswith("_ms") and isinstance(raw, int | float) and not isinstance(raw, bool):
        exact = f"{raw:,.3f}".rstrip("0").rstrip(".")
        return f"{duration_ms(raw)} ({exact} ms)" if raw >= 1000 else duration_ms(raw)
    if name.endswith("_at") and isinstance(raw, str):
        return timestamp(raw)
    if name == "tokens_per_second" and isinstance(raw, int | float):
        return f"{raw:,.1f}"
    return value(raw)


def _fields(data: dict[str, Any], known: tuple[str, ...]) -> list[Field]:
    names = [n for n in known if n in data] + sorted(n for n in data if n not in known)
    return [Field(n, label(n), display(n, data[n]), data[n]) for n in names if data[n] is not None]


def sections(record: dict[str, Any]) -> list[Section]:
    """Identity first, then each present section; JSON-valued sections are left to `json_sections`."""
    known_top = set(IDENTITY) | {key for key, _, _ in SECTIONS} | {key for key, _ in JSON_SECTIONS}
    identity = {n: record[n] for n in record if n in IDENTITY or n not in known_top}
    out = [Section("identity", "Call", _fields(identity, IDENTITY))]
    for key, title, known in SECTIONS:
        data = record.get(key)
        if isinstance(data, dict) and data:
            out.append(Section(key, title, _fields(data, known)))
    return out


def json_sections(record: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(key, title, record[key]) for key, title in JSON_SECTIONS if record.get(key) not in (None, {}, [])]


__all__ = ["Field", "Section", "display", "json_sections", "label", "sections"]
