"""What an `LLMCall` looks like as an OpenTelemetry span: its name, kind and attributes.

Attribute names follow the GenAI semantic conventions v1.41.0 (checked against
`docs/gen-ai/gen-ai-spans.md`, `docs/gen-ai/openai.md` and `docs/registry/attributes/*.md`
at tag v1.41.0 of open-telemetry/semantic-conventions). They are plain strings here because
the incubating `opentelemetry-semantic-conventions` constants move between releases (its
0.66b2 release already marks the GenAI metrics as moved to another repository).

Nothing here imports OpenTelemetry: attributes are a plain dict, so this module works and
is testable without the `otel` extra.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tokentrail.core import LLMCall, ModelOperation

SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"

# ---- GenAI semantic conventions v1.41.0 -----------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"  # seconds
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"  # a double in v1.41
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
USER_ID = "user.id"
SESSION_ID = "session.id"

# Keys of `LLMCall.provider_specific` the instrumentation layer fills with the endpoint it called.
PROVIDER_SPECIFIC_SERVER_ADDRESS = "server_address"
PROVIDER_SPECIFIC_SERVER_PORT = "server_port"

# `openai.*` attributes belong only on spans whose provider speaks the OpenAI format (semconv:
# "spans related to AWS Bedrock ... are not expected to include openai.* attributes").
_OPENAI_PROVIDERS = frozenset({"openai", "azure.ai.openai"})

# Span name suffix and kind follow the per-operation conventions: tools and workflows run in
# process (INTERNAL) and are named after the tool/workflow; agents after the agent.
_NAMED_BY: dict[ModelOperation, str] = {
    ModelOperation.EXECUTE_TOOL: GEN_AI_TOOL_NAME,
    ModelOperation.CREATE_AGENT: GEN_AI_AGENT_NAME,
    ModelOperation.INVOKE_AGENT: GEN_AI_AGENT_NAME,
    ModelOperation.INVOKE_WORKFLOW: GEN_AI_WORKFLOW_NAME,
}
INTERNAL_OPERATIONS = frozenset({ModelOperation.EXECUTE_TOOL, ModelOperation.INVOKE_WORKFLOW})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def model_of(call: LLMCall) -> str | None:
    return call.request_model or call.provider_model


def span_name(call: LLMCall) -> str:
    """`{operation} {model}`; tools, agents and workflows use their name when there is no model."""
    suffix = model_of(call)
    if suffix is None and call.operation in _NAMED_BY:
        suffix = call.name or (call.attribution.workflow if call.attribution else None)
    return f"{call.operation.value} {suffix}" if suffix else call.operation.value


def to_ns(moment: datetime) -> int:
    """Exact integer nanoseconds since the epoch (float timestamps lose sub-microsecond digits)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def span_times(call: LLMCall) -> tuple[int, int]:
    """Start and end in ns; a record without `completed_at` ends after its measured duration."""
    start = to_ns(call.started_at)
    if call.completed_at is not None:
        return start, max(start, to_ns(call.completed_at))
    perf = call.performance_metrics
    if perf is not None and perf.total_duration_ms is not None:
        return start, start + round(perf.total_duration_ms * 1_000_000)
    return start, start


def duration_seconds(call: LLMCall) -> float | None:
    perf = call.performance_metrics
    if perf is not None and perf.total_duration_ms is not None:
        return perf.total_duration_ms / 1000.0
    ms = call.duration_ms
    return None if ms is None else ms / 1000.0


def server_endpoint(call: LLMCall) -> tuple[str | None, int | None]:
    """`server.address`/`server.port` from `provider_specific["server_address"/"server_port"]`."""
    extra = call.provider_specific or {}
    address = extra.get(PROVIDER_SPECIFIC_SERVER_ADDRESS)
    port = extra.get(PROVIDER_SPECIFIC_SERVER_PORT)
    if not isinstance(address, str) or not address:
        address = None
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int):
        port = None
    return address, port


def error_type(call: LLMCall) -> str | None:
    if call.status.value != "error":
        return None
    return call.error.type if call.error is not None and call.error.type else "_OTHER"


def error_description(call: LLMCall) -> str:
    if call.error is None:
        return "error"
    if call.error.message:
        return f"{call.error.type}: {call.error.message}"
    return call.error.type


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attrs[key] = value


def _as_float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _attribute_value(value: Any) -> Any:
    """A value OpenTelemetry accepts: primitives, homogeneous primitive lists, else JSON text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(item) for item in value}
        if len(kinds) == 1 and kinds.pop() in (str, bool, int, float):
            return list(value)
    return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


def _request_attributes(call: LLMCall, attrs: dict[str, Any], openai_format: bool) -> None:
    params = call.request_parameters
    if params is None:
        return
    _put(attrs, GEN_AI_REQUEST_TEMPERATURE, _as_float(params.temperature))
    _put(attrs, GEN_AI_REQUEST_TOP_P, _as_float(params.top_p))
    _put(attrs, GEN_AI_REQUEST_TOP_K, _as_float(params.top_k))
    _put(attrs, GEN_AI_REQUEST_MAX_TOKENS, params.max_tokens)
    _put(attrs, GEN_AI_REQUEST_FREQUENCY_PENALTY, _as_float(params.frequency_penalty))
    _put(attrs, GEN_AI_REQUEST_PRESENCE_PENALTY, _as_float(params.presence_penalty))
    if params.stop_sequences:
        attrs[GEN_AI_REQUEST_STOP_SEQUENCES] = list(params.stop_sequences)
    _put(attrs, GEN_AI_REQUEST_SEED, int(params.seed) if params.seed is not None else None)
    _put(attrs, GEN_AI_REQUEST_CHOICE_COUNT, params.n)
    tier_key = OPENAI_REQUEST_SERVICE_TIER if openai_format else "tokentrail.request.service_tier"
    _put(attrs, tier_key, params.service_tier)


def _response_attributes(call: LLMCall, attrs: dict[str, Any], openai_format: bool) -> None:
    _put(attrs, GEN_AI_RESPONSE_MODEL, call.provider_model)
    meta = call.response_metadata
    if meta is None:
        return
    _put(attrs, GEN_AI_RESPONSE_ID, meta.response_id or meta.request_id)
    if meta.finish_reason:
        attrs[GEN_AI_RESPONSE_FINISH_REASONS] = [meta.finish_reason]
    _put(attrs, "tokentrail.request_id", meta.request_id)
    _put(attrs, "tokentrail.client_request_id", meta.client_request_id)
    _put(attrs, "tokentrail.response.model_version", meta.model_version)
    prefix = "openai.response." if openai_format else "tokentrail.response."
    _put(attrs, prefix + "service_tier", meta.service_tier)
    _put(attrs, prefix + "system_fingerprint", meta.system_fingerprint)


def _usage_attributes(call: LLMCall, attrs: dict[str, Any]) -> None:
    usage = call.token_usage
    if usage is None:
        return
    # tokentrail stores usage inclusively, exactly as v1.41 defines these attributes.
    _put(attrs, GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
    _put(attrs, GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
    _put(attrs, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens)
    _put(attrs, GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_write_tokens)
    _put(attrs, GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_tokens)
    _put(attrs, "tokentrail.usage.total_tokens", usage.total_tokens)
    _put(attrs, "tokentrail.usage.audio_input_tokens", usage.audio_input_tokens)
    _put(attrs, "tokentrail.usage.audio_output_tokens", usage.audio_output_tokens)


def _cost_attributes(call: LLMCall, attrs: dict[str, Any]) -> None:
    cost = call.cost_metrics
    if cost is None:
        return
    attrs["tokentrail.pricing_status"] = cost.pricing_status.value
    if cost.total_cost is not None:
        attrs["tokentrail.cost.total"] = str(cost.total_cost)  # exact
        attrs["tokentrail.cost.total_usd"] = float(cost.total_cost)  # for backends that sum numbers
    for bucket in ("input", "cache_read", "cache_write", "output", "other"):
        amount = getattr(cost, f"{bucket}_cost")
        if amount is not None:
            attrs[f"tokentrail.cost.{bucket}"] = str(amount)
    if cost.provider_reported_cost is not None:
        attrs["tokentrail.cost.provider_reported"] = str(cost.provider_reported_cost)
    attrs["tokentrail.cost.currency"] = cost.currency
    _put(attrs, "tokentrail.price_version", cost.price_version)


def _attribution_attributes(call: LLMCall, attrs: dict[str, Any]) -> None:
    who = call.attribution
    if who is None:
        return
    for field, value in who.to_dict().items():
        attrs[f"tokentrail.{field}"] = value
    _put(attrs, USER_ID, who.user_id)
    _put(attrs, SESSION_ID, who.session_id)
    _put(attrs, GEN_AI_CONVERSATION_ID, who.session_id)


def _performance_attributes(call: LLMCall, attrs: dict[str, Any]) -> None:
    perf = call.performance_metrics
    if perf is None:
        return
    if perf.time_to_first_token_ms is not None:
        attrs[GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = perf.time_to_first_token_ms / 1000.0
        attrs["tokentrail.time_to_first_token_ms"] = float(perf.time_to_first_token_ms)
    _put(attrs, "tokentrail.tokens_per_second", _as_float(perf.tokens_per_second))
    _put(attrs, "tokentrail.queue_time_ms", _as_float(perf.queue_time_ms))


def is_streaming(call: LLMCall) -> bool:
    if call.streaming is not None:
        return call.streaming
    return bool(call.request_parameters and call.request_parameters.stream)


def span_attributes(call: LLMCall, *, capture_content: bool) -> dict[str, Any]:
    """Every span attribute of one record; message content only when `capture_content`."""
    attrs: dict[str, Any] = {
        GEN_AI_OPERATION_NAME: call.operation.value,
        "tokentrail.record.id": call.id,
        "tokentrail.status": call.status.value,
    }
    _put(attrs, GEN_AI_PROVIDER_NAME, call.provider)
    _put(attrs, GEN_AI_REQUEST_MODEL, call.request_model)
    _put(attrs, "tokentrail.trace_id", call.trace_id)
    _put(attrs, "tokentrail.parent_id", call.parent_id)
    named_by = _NAMED_BY.get(call.operation)
    if named_by is not None:
        workflow = call.attribution.workflow if call.attribution else None
        _put(attrs, named_by, call.name or (workflow if named_by == GEN_AI_WORKFLOW_NAME else None))
    elif call.name:
        attrs["tokentrail.name"] = call.name
    address, port = server_endpoint(call)
    _put(attrs, SERVER_ADDRESS, address)
    _put(attrs, SERVER_PORT, port)
    _put(attrs, ERROR_TYPE, error_type(call))
    if call.error is not None and call.error.http_status is not None:
        attrs["tokentrail.error.http_status"] = call.error.http_status
    openai_format = call.provider in _OPENAI_PROVIDERS
    _request_attributes(call, attrs, openai_format)
    _response_attributes(call, attrs, openai_format)
    if is_streaming(call):
        attrs[GEN_AI_REQUEST_STREAM] = True  # v1.41: set if and only if the request streamed
    _put(attrs, "tokentrail.streaming", call.streaming)
    if call.response_schema is not None:
        attrs[GEN_AI_OUTPUT_TYPE] = "json"
    _usage_attributes(call, attrs)
    _cost_attributes(call, attrs)
    _attribution_attributes(call, attrs)
    _performance_attributes(call, attrs)
    _put(attrs, "tokentrail.estimated", call.estimated)
    _put(attrs, "tokentrail.cache_hit", call.cache_hit)
    _put(attrs, "tokentrail.attempt", call.attempt)
    if call.units is not None:
        for unit, amount in call.units.to_dict().items():
            attrs[f"tokentrail.units.{unit}"] = amount
    limits = call.rate_limit_info
    if limits is not None:
        _put(attrs, "tokentrail.rate_limit.requests_remaining", limits.requests_remaining)
        _put(attrs, "tokentrail.rate_limit.tokens_remaining", limits.tokens_remaining)
    for key, value in (call.metadata or {}).items():
        if value is not None:
            attrs[f"tokentrail.metadata.{key}"] = _attribute_value(value)
    if capture_content:
        _content_attributes(call, attrs)
    return attrs


def _content_attributes(call: LLMCall, attrs: dict[str, Any]) -> None:
    content = call.content
    if content is None:
        return
    # v1.41 allows JSON strings on spans where structured attributes are not supported.
    if content.messages is not None:
        attrs[GEN_AI_INPUT_MESSAGES] = _json(content.messages)
    if content.result is not None:
        attrs[GEN_AI_OUTPUT_MESSAGES] = _json(content.result)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
