"""The Anthropic Messages wire format apart from usage: the request parameters a call sets, the
JSON schema it asks for, what the response says about itself, and what an error body says.

Works on keyword-argument mappings, SDK objects or parsed JSON, so it does not depend on the
`anthropic` package. Usage extraction lives in `providers.anthropic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokentrail.providers._access import get
from tokentrail.providers._params import is_unset, pick

# SDK keyword -> RequestParameters field
REQUEST_PARAMETERS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "max_tokens": "max_tokens",
    "stop_sequences": "stop_sequences",
    "stream": "stream",
    "service_tier": "service_tier",
}
# options kept beside the record's parameters (provider_specific.request_params)
_EXTRA_SCALARS = ("speed", "inference_geo")


def request_view(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The call's arguments as the request body will have them: `extra_body` values (the way
    to send parameters an SDK version does not declare, such as `temperature` in anthropic
    2.x) take precedence, as they do in the SDK."""
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping) and extra:
        return {**kwargs, **extra}
    return kwargs


def request_parameters(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The record's request parameters set in a `messages.create` / `stream` call."""
    return pick(kwargs, REQUEST_PARAMETERS)


def extra_parameters(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Thinking (`thinking.type`, `budget_tokens`), effort, speed and inference geography."""
    out: dict[str, Any] = {}
    thinking = kwargs.get("thinking")
    if isinstance(thinking, Mapping):
        kind = thinking.get("type")
        if isinstance(kind, str):
            out["thinking"] = kind
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            out["thinking_budget_tokens"] = budget
    config = kwargs.get("output_config")
    if isinstance(config, Mapping) and isinstance(config.get("effort"), str):
        out["effort"] = config["effort"]
    for key in _EXTRA_SCALARS:
        value = kwargs.get(key)
        if not is_unset(value) and isinstance(value, str):
            out[key] = value
    return out or None


def schema_of_request(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of structured outputs given as JSON: `output_config.format` (or the
    older `output_format`) `{"type": "json_schema", "schema": {...}}`."""
    config = kwargs.get("output_config")
    found = config.get("format") if isinstance(config, Mapping) else None
    if found is None:
        found = kwargs.get("output_format")
    if isinstance(found, Mapping) and found.get("type") == "json_schema":
        schema = found.get("schema")
        if isinstance(schema, Mapping):
            return dict(schema)
    return None


# ---- response -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MessageFacts:
    response_id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    service_tier: str | None = None
    inference_geo: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def message_facts(message: Any, delta: Any = None) -> MessageFacts:
    """Id (`msg_...`), model, stop reason and service tier of a message; for a stream, the
    `message_start` message and the last `message_delta` event (its `delta.stop_reason` and
    cumulative `usage`)."""
    if message is None and delta is None:
        return MessageFacts()
    usage = get(delta, "usage")
    tier = _text(get(usage, "service_tier")) or _text(get(message, "usage", "service_tier"))
    geo = _text(get(usage, "inference_geo")) or _text(get(message, "usage", "inference_geo"))
    return MessageFacts(
        response_id=_text(get(message, "id")),
        model=_text(get(message, "model")),
        finish_reason=_text(get(delta, "delta", "stop_reason")) or _text(get(message, "stop_reason")),
        service_tier=tier,
        inference_geo=geo,
    )


def output_text(message: Any) -> Any:
    """The text (and tool calls) of a message, for content capture."""
    blocks = get(message, "content")
    if not isinstance(blocks, list | tuple):
        return None
    texts: list[str] = []
    tools: list[dict[str, Any]] = []
    for block in blocks:
        kind = get(block, "type")
        if kind == "text" and isinstance(get(block, "text"), str):
            texts.append(get(block, "text"))
        elif kind == "tool_use":
            tools.append({"id": get(block, "id"), "name": get(block, "name"), "input": get(block, "input")})
    text = "".join(texts) or None
    return {"content": text, "tool_calls": tools} if tools else text


def prompt_of(kwargs: Mapping[str, Any]) -> Any:
    """The prompt of a call for content capture: the messages, with the system prompt."""
    messages = kwargs.get("messages")
    if not isinstance(messages, list | tuple):
        messages = None  # an iterator the SDK has consumed: never read it again
    system = kwargs.get("system")
    if system is not None and not is_unset(system):
        return {"system": system, "messages": messages}
    return messages


# ---- errors -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ErrorFacts:
    error_type: str | None = None  # e.g. rate_limit_error, overloaded_error
    request_id: str | None = None


def error_facts(body: Any) -> ErrorFacts:
    """What an error body `{"type":"error","error":{"type","message"},"request_id"}` says
    (the SDK hands over either the whole body or its `error` member)."""
    inner = get(body, "error")
    kind = _text(get(inner, "type")) if inner is not None else None
    if kind is None and get(body, "type") != "error":
        kind = _text(get(body, "type"))
    return ErrorFacts(error_type=kind, request_id=_text(get(body, "request_id")))


__all__ = [
    "REQUEST_PARAMETERS",
    "ErrorFacts",
    "MessageFacts",
    "error_facts",
    "extra_parameters",
    "message_facts",
    "output_text",
    "prompt_of",
    "request_parameters",
    "request_view",
    "schema_of_request",
]
