"""The AWS Bedrock runtime wire format apart from the usage blocks: the model a call names,
the request parameters (Converse `inferenceConfig`, or an InvokeModel body in the model's own
format), the JSON schema asked for, what a response and its headers say, and errors.

Works on the plain dicts boto3 takes and returns, so it does not depend on botocore. Usage
blocks are read by `providers.bedrock`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokentrail.core import TokenUsage
from tokentrail.providers._access import get, header_count, non_negative
from tokentrail.providers._params import pick
from tokentrail.providers.bedrock import (
    CONVERSE,
    CONVERSE_STREAM,
    INPUT_HEADER,
    INVOKE_MODEL,
    INVOKE_MODEL_STREAM,
    OUTPUT_HEADER,
)

# boto3 operation name -> the endpoint family `providers.bedrock.extract` knows
OPERATIONS: dict[str, str] = {
    "Converse": CONVERSE,
    "ConverseStream": CONVERSE_STREAM,
    "InvokeModel": INVOKE_MODEL,
    "InvokeModelWithResponseStream": INVOKE_MODEL_STREAM,
}
STREAMING = frozenset({CONVERSE_STREAM, INVOKE_MODEL_STREAM})

CACHE_READ_HEADER = "x-amzn-bedrock-cache-read-input-token-count"
CACHE_WRITE_HEADER = "x-amzn-bedrock-cache-write-input-token-count"
LATENCY_HEADER = "x-amzn-bedrock-invocation-latency"
SERVICE_TIER_HEADER = "x-amzn-bedrock-service-tier"
_ARN_MODEL_KINDS = ("foundation-model/", "inference-profile/")
_BODY_LIMIT = 1 << 20  # request bodies above 1 MiB are not parsed for parameters

_CONVERSE_PARAMETERS = {
    "maxTokens": "max_tokens",
    "temperature": "temperature",
    "topP": "top_p",
    "stopSequences": "stop_sequences",
}
# InvokeModel bodies, by model family: Claude / Mistral / Cohere / Llama at the top level
_BODY_PARAMETERS = {
    "max_tokens": "max_tokens",
    "max_gen_len": "max_tokens",
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "p": "top_p",
    "top_k": "top_k",
    "k": "top_k",
    "stop_sequences": "stop_sequences",
    "stop": "stop_sequences",
    "seed": "seed",
}
# ... Nova's `inferenceConfig` and Titan's `textGenerationConfig`
_NESTED_PARAMETERS = {
    "max_new_tokens": "max_tokens",
    "maxTokenCount": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "topP": "top_p",
    "top_k": "top_k",
    "stopSequences": "stop_sequences",
}


def model_name(model_id: Any) -> str | None:
    """The model of a `modelId`: an id as given (`anthropic.claude-...`, `us.amazon.nova-...`),
    or the id inside a foundation-model / inference-profile ARN."""
    if not isinstance(model_id, str) or not model_id:
        return None
    if model_id.startswith("arn:"):
        for kind in _ARN_MODEL_KINDS:
            at = model_id.find(kind)
            if at >= 0:
                return model_id[at + len(kind) :] or model_id
    return model_id


def region_of(endpoint_host: str | None) -> str | None:
    """`us-east-1` of `bedrock-runtime.us-east-1.amazonaws.com`."""
    if not endpoint_host:
        return None
    parts = endpoint_host.split(".")
    return parts[1] if len(parts) > 3 and parts[0].startswith("bedrock-runtime") else None


def _body_json(body: Any) -> Any:
    if isinstance(body, bytes | bytearray | str) and len(body) <= _BODY_LIMIT:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None
    return None  # a file-like body is the caller's: never read here


def request_parameters(api: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(record parameters, other options) of a bedrock-runtime call's parameters."""
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if api in (CONVERSE, CONVERSE_STREAM):
        pick(params.get("inferenceConfig"), _CONVERSE_PARAMETERS, out)
        fields = params.get("additionalModelRequestFields")
        if isinstance(fields, Mapping):
            pick(fields, {"top_k": "top_k", "topK": "top_k"}, out)
            _thinking(fields, extra)
        latency = get(params, "performanceConfig", "latency")
        tier = get(params, "serviceTier", "type")
        effort = get(params, "outputConfig", "effort")
        if isinstance(effort, str):
            extra["effort"] = effort
    else:
        body = _body_json(params.get("body"))
        if isinstance(body, Mapping):
            pick(body, _BODY_PARAMETERS, out)
            for key in ("inferenceConfig", "textGenerationConfig"):
                pick(body.get(key), _NESTED_PARAMETERS, out)
            _thinking(body, extra)
        latency = params.get("performanceConfigLatency")
        tier = params.get("serviceTier")
    if isinstance(tier, str) and tier:
        out["service_tier"] = tier
    if isinstance(latency, str) and latency:
        extra["latency"] = latency
    if api in STREAMING:
        out["stream"] = True
    return out, extra or None


def _thinking(fields: Mapping[str, Any], extra: dict[str, Any]) -> None:
    """Claude's `thinking` (or Nova's `reasoningConfig`) among the model-specific fields."""
    thinking = fields.get("thinking")
    if isinstance(thinking, Mapping):
        if isinstance(thinking.get("type"), str):
            extra["thinking"] = thinking["type"]
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            extra["thinking_budget_tokens"] = budget
    reasoning = fields.get("reasoningConfig")
    if isinstance(reasoning, Mapping) and isinstance(reasoning.get("maxReasoningEffort"), str):
        extra["reasoning_effort"] = reasoning["maxReasoningEffort"]


def schema_of_request(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Converse structured output: `outputConfig.textFormat.structure.jsonSchema.schema` (JSON text)."""
    text = get(params, "outputConfig", "textFormat", "structure", "jsonSchema", "schema")
    if isinstance(text, Mapping):
        return dict(text)
    found = _body_json(text) if isinstance(text, str) else None
    return found if isinstance(found, dict) else None


# ---- response -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResponseFacts:
    request_id: str | None = None
    attempt: int | None = None
    status: int | None = None
    headers: Mapping[str, Any] | None = None


def response_facts(response: Any) -> ResponseFacts:
    """Request id, attempt (1 + `RetryAttempts`), HTTP status and headers of `ResponseMetadata`."""
    meta = get(response, "ResponseMetadata")
    request_id = get(meta, "RequestId")
    headers = get(meta, "HTTPHeaders")
    if not isinstance(request_id, str) or not request_id:
        request_id = get(headers, "x-amzn-requestid")
    retries = get(meta, "RetryAttempts")
    status = get(meta, "HTTPStatusCode")
    return ResponseFacts(
        request_id=request_id if isinstance(request_id, str) and request_id else None,
        attempt=retries + 1 if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0 else None,
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        headers=headers if isinstance(headers, Mapping) else None,
    )


def header_usage(headers: Any) -> TokenUsage | None:
    """InvokeModel's token-count headers. Input excludes the cache, as in Converse (A.7): the
    inclusive input adds the cache read / write headers when they are sent."""
    uncached = non_negative(INPUT_HEADER, header_count(headers, INPUT_HEADER))
    output = non_negative(OUTPUT_HEADER, header_count(headers, OUTPUT_HEADER))
    if uncached is None and output is None:
        return None
    read = non_negative(CACHE_READ_HEADER, header_count(headers, CACHE_READ_HEADER))
    write = non_negative(CACHE_WRITE_HEADER, header_count(headers, CACHE_WRITE_HEADER))
    if uncached is None:
        read = write = None  # parts of an unreported total cannot be priced
    total_input = None if uncached is None else uncached + (read or 0) + (write or 0)
    usage = TokenUsage.build(
        input_tokens=total_input, output_tokens=output, cache_read_tokens=read, cache_write_tokens=write
    )
    return None if usage.is_empty else usage


def latency_ms(response: Any, headers: Any) -> int | None:
    """Bedrock's own model latency: Converse `metrics.latencyMs`, InvokeModel's header."""
    value = get(response, "metrics", "latencyMs")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return header_count(headers, LATENCY_HEADER)


def stop_reason(response: Any) -> str | None:
    value = get(response, "stopReason")
    return value if isinstance(value, str) and value else None


def service_tier(response: Any, headers: Any) -> str | None:
    """The tier that served the call: Converse `serviceTier.type`, or the InvokeModel header."""
    value = get(response, "serviceTier", "type")
    if not isinstance(value, str) or not value:
        value = get(headers, SERVICE_TIER_HEADER)
    return value if isinstance(value, str) and value else None


def output_text(response: Any) -> Any:
    """The text (and tool uses) of a Converse response, for content capture."""
    blocks = get(response, "output", "message", "content")
    if not isinstance(blocks, list | tuple):
        return None
    texts = [get(b, "text") for b in blocks if isinstance(get(b, "text"), str)]
    tools = [get(b, "toolUse") for b in blocks if get(b, "toolUse") is not None]
    text = "".join(texts) or None
    return {"content": text, "tool_calls": tools} if tools else text


# ---- errors -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ErrorFacts:
    code: str | None = None  # ValidationException, ThrottlingException, ...
    message: str | None = None
    status: int | None = None
    request_id: str | None = None
    attempt: int | None = None


def error_facts(error_response: Any) -> ErrorFacts:
    """What a botocore `ClientError.response` says."""
    facts = response_facts(error_response)
    code = get(error_response, "Error", "Code")
    message = get(error_response, "Error", "Message")
    return ErrorFacts(
        code=code if isinstance(code, str) and code else None,
        message=message if isinstance(message, str) and message else None,
        status=facts.status,
        request_id=facts.request_id,
        attempt=facts.attempt,
    )


__all__ = [
    "OPERATIONS",
    "STREAMING",
    "ErrorFacts",
    "ResponseFacts",
    "error_facts",
    "header_usage",
    "latency_ms",
    "model_name",
    "output_text",
    "region_of",
    "request_parameters",
    "response_facts",
    "schema_of_request",
    "service_tier",
    "stop_reason",
]
