"""The Gemini / Vertex AI wire format apart from usage: the model a call names, the request
parameters of its `config`, the JSON schema it asks for, what a response says about itself,
and the wait a 429 asks for.

Works on plain values (dicts with snake_case or camelCase keys, google-genai objects, parsed
JSON), so it does not depend on the `google-genai` package. Usage lives in `providers.gemini`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokentrail.providers._access import get
from tokentrail.providers._params import is_unset, pick, plain
from tokentrail.providers.ratelimits import parse_duration

# config field (snake_case, then camelCase) -> RequestParameters field
REQUEST_PARAMETERS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "topP": "top_p",
    "top_k": "top_k",
    "topK": "top_k",
    "max_output_tokens": "max_tokens",
    "maxOutputTokens": "max_tokens",
    "stop_sequences": "stop_sequences",
    "stopSequences": "stop_sequences",
    "seed": "seed",
    "candidate_count": "n",
    "candidateCount": "n",
    "presence_penalty": "presence_penalty",
    "presencePenalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "frequencyPenalty": "frequency_penalty",
}
_THINKING = ("thinking_budget", "thinking_level", "include_thoughts")
_EXTRA = ("response_mime_type", "cached_content", "media_resolution", "output_dimensionality", "task_type")


def _value(config: Any, snake: str) -> Any:
    """A config field by its snake_case name or its camelCase alias."""
    if config is None:
        return None
    parts = snake.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    if isinstance(config, Mapping):
        found = config.get(snake)
        return config.get(camel) if found is None else found
    return getattr(config, snake, None)


def model_name(model: Any) -> str | None:
    """The model id of a `model` argument: `models/gemini-2.5-flash`,
    `projects/p/locations/l/publishers/google/models/gemini-2.5-flash` and
    `publishers/google/models/...` all name `gemini-2.5-flash`; tuned models stay as given."""
    if not isinstance(model, str) or not model:
        return None
    at = model.rfind("models/")
    if at >= 0 and (at == 0 or model[at - 1] == "/"):
        return model[at + len("models/") :] or None
    return model


def request_parameters(config: Any) -> dict[str, Any]:
    """The record's request parameters in a `config` (a dict or a `GenerateContentConfig`)."""
    if config is None:
        return {}
    out = pick(config, REQUEST_PARAMETERS)
    top_k = _value(config, "top_k")
    if "top_k" not in out and isinstance(top_k, float) and top_k.is_integer() and top_k >= 0:
        out["top_k"] = int(top_k)  # google-genai declares top_k a float; 40.0 is 40
    tier = plain(_value(config, "service_tier"))
    if isinstance(tier, str) and tier:
        out["service_tier"] = tier
    return out


def extra_parameters(config: Any) -> dict[str, Any] | None:
    """Thinking budget / level, response MIME type, cached content, embedding dimensions..."""
    if config is None:
        return None
    out: dict[str, Any] = {}
    thinking = _value(config, "thinking_config")
    for key in _THINKING:
        value = plain(_value(thinking, key))
        if value is not None:
            out[key] = value
    for key in _EXTRA:
        value = plain(_value(config, key))
        if value is not None and not is_unset(value):
            out[key] = value
    return out or None


def schema_of_config(config: Any) -> dict[str, Any] | None:
    """`response_json_schema` (JSON schema) or `response_schema` (a dict, a `types.Schema`,
    or a pydantic model class) as a JSON-ready dict."""
    for key in ("response_json_schema", "response_schema"):
        found = _value(config, key)
        if found is None:
            continue
        if isinstance(found, type):
            schema = getattr(found, "model_json_schema", None)
            try:
                made = schema() if callable(schema) else None
            except Exception:  # not a schema pydantic can make: the SDK will say so
                made = None
            if isinstance(made, dict):
                return made
            continue
        made = plain(found)
        if isinstance(made, dict) and made:
            return made
    return None


# ---- response -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResponseFacts:
    response_id: str | None = None
    model_version: str | None = None
    finish_reason: str | None = None
    block_reason: str | None = None
    traffic_type: str | None = None


def _text(value: Any) -> str | None:
    value = plain(value)
    return value if isinstance(value, str) and value else None


def finish_reasons(candidates: Any) -> str | None:
    """Candidates' finish reasons (`STOP`, `MAX_TOKENS`, ...) joined with commas."""
    if not isinstance(candidates, list | tuple):
        return None
    reasons = [r for r in (_text(first(c, "finish_reason", "finishReason")) for c in candidates) if r]
    return ",".join(reasons) if reasons else None


def first(obj: Any, snake: str, camel: str) -> Any:
    found = get(obj, snake)
    return get(obj, camel) if found is None else found


def response_facts(response: Any, finish_reason: str | None = None) -> ResponseFacts:
    """Id, model version, finish reason, prompt block reason and Vertex traffic type."""
    if response is None:
        return ResponseFacts(finish_reason=finish_reason)
    usage = first(response, "usage_metadata", "usageMetadata")
    return ResponseFacts(
        response_id=_text(first(response, "response_id", "responseId")),
        model_version=_text(first(response, "model_version", "modelVersion")),
        finish_reason=finish_reason or finish_reasons(get(response, "candidates")),
        block_reason=_text(first(first(response, "prompt_feedback", "promptFeedback"), "block_reason", "blockReason")),
        traffic_type=_text(first(usage, "traffic_type", "trafficType")),
    )


def output_text(response: Any) -> str | None:
    """The text parts of the first candidate (thoughts left out), for content capture."""
    candidates = get(response, "candidates")
    if not isinstance(candidates, list | tuple) or not candidates:
        return None
    parts = get(candidates[0], "content", "parts")
    if not isinstance(parts, list | tuple):
        return None
    texts = [get(p, "text") for p in parts if not get(p, "thought")]
    return "".join(t for t in texts if isinstance(t, str)) or None


# ---- errors -------------------------------------------------------------------------------
def retry_delay_ms(details: Any) -> float | None:
    """The wait a 429 body asks for: `error.details[].retryDelay` (`"37s"`) in milliseconds."""
    error = get(details, "error")
    items = get(error if error is not None else details, "details")
    if not isinstance(items, list | tuple):
        return None
    for item in items:
        delay = first(item, "retryDelay", "retry_delay")
        if isinstance(delay, str):
            seconds = parse_duration(delay)
            if seconds is not None:
                return seconds * 1000.0
    return None


__all__ = [
    "REQUEST_PARAMETERS",
    "ResponseFacts",
    "extra_parameters",
    "finish_reasons",
    "model_name",
    "output_text",
    "request_parameters",
    "response_facts",
    "retry_delay_ms",
    "schema_of_config",
]
