"""One OTLP span -> one priced `LLMCall`, or None for a span that is not a GenAI call.

`span_to_call` recognises GenAI semconv spans (current and older attribute names) and
OpenInference LLM/EMBEDDING spans, converts their usage to tokentrail's inclusive counts,
prices it with `calculate_cost` at the span's start, and attributes it from the resource
(`service.name`, `deployment.environment`) and the span (`user.id`, `session.id`,
`gen_ai.conversation.id`). A GenAI span with an impossible value (a negative count, ids of the
wrong size, an end before its start) raises ValidationError naming the field.

The record id is derived from (trace id, span id), so exporting a span twice stores it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tokentrail.core import (
    ATTRIBUTION_FIELDS,
    Attribution,
    CallStatus,
    Content,
    CostBreakdown,
    ErrorInfo,
    LLMCall,
    ModelOperation,
    PerformanceMetrics,
    PricingStatus,
    RequestParameters,
    ResponseMetadata,
    TokenUsage,
    ValidationError,
    normalize_provider,
)
from tokentrail.pricing import apply_provider_reported, calculate_cost, price_version
from tokentrail.server.otlp import genai_names as n
from tokentrail.server.otlp import readers as r
from tokentrail.server.otlp.decode import SpanView

# uuid5 namespace of records made from spans: id = uuid5(OTLP_NAMESPACE, "<trace hex>:<span hex>")
OTLP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/tokentrail/tokentrail/otlp-span")
SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ProviderGuess = Callable[[str], str | None]


def record_id(trace_id: bytes, span_id: bytes) -> str:
    """The record id of a span: a UUIDv5 of its trace and span ids (idempotent re-export)."""
    return str(uuid.uuid5(OTLP_NAMESPACE, f"{trace_id.hex()}:{span_id.hex()}"))


def span_operation(attrs: r.Attrs) -> ModelOperation | None:
    """The operation of a GenAI span; None for other spans and unknown operations."""
    kind = attrs.get(n.OPENINFERENCE_KIND)
    if isinstance(kind, str) and kind.strip().upper() in n.OPENINFERENCE_OPERATIONS:
        return n.OPENINFERENCE_OPERATIONS[kind.strip().upper()]
    name = attrs.get(n.OPERATION)
    if isinstance(name, str) and name.strip():
        return n.OPERATION_ALIASES.get(name.strip().lower())
    if any(attrs.get(key) is not None for key in n.GENAI_MARKERS):
        request_type = attrs.get(n.OPENLLMETRY_REQUEST_TYPE)
        if isinstance(request_type, str):
            return n.OPERATION_ALIASES.get(request_type.strip().lower(), ModelOperation.CHAT)
        return ModelOperation.CHAT
    return None


def span_usage(attrs: r.Attrs) -> TokenUsage | None:
    """Inclusive usage of a span (see the table in docs/server.md), or None when none is reported.

    The conventions (GenAI semconv, OpenInference) define input as including cache reads and
    writes and output as including reasoning, and the major instrumentations follow that,
    Anthropic's included. A sender that passed Anthropic's exclusive `input_tokens` through
    unchanged shows it: its cache counts exceed its input. That input is made inclusive by
    adding them; likewise reasoning larger than output is added to output.
    """
    input_tokens = r.count(attrs, n.INPUT_TOKENS)
    output_tokens = r.count(attrs, n.OUTPUT_TOKENS)
    total_tokens = r.count(attrs, n.TOTAL_TOKENS)
    cache_read = r.count(attrs, n.CACHE_READ_TOKENS)
    cache_write = r.count(attrs, n.CACHE_WRITE_TOKENS)
    reasoning = r.count(attrs, n.REASONING_TOKENS)
    audio_in = r.count(attrs, n.AUDIO_INPUT_TOKENS)
    audio_out = r.count(attrs, n.AUDIO_OUTPUT_TOKENS)
    counts = (input_tokens, output_tokens, total_tokens, cache_read, cache_write, reasoning, audio_in, audio_out)
    if all(value is None for value in counts):
        return None
    cached = (cache_read or 0) + (cache_write or 0)
    if input_tokens is not None and cached > input_tokens:
        input_tokens += cached
    if output_tokens is not None and reasoning is not None and reasoning > output_tokens:
        output_tokens += reasoning
    if input_tokens is not None and output_tokens is not None:
        total_tokens = input_tokens + output_tokens
    try:
        return TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=total_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
            audio_input_tokens=audio_in,
            audio_output_tokens=audio_out,
        )
    except ValidationError as exc:
        raise exc.prefixed("token_usage") from None


def span_provider(attrs: r.Attrs, model: str | None, guess: ProviderGuess | None) -> str | None:
    """The normalised provider: the span's own name for it, corrected by `server.address` for
    OpenAI-compatible services, else guessed from the model name."""
    provider: str | None = None
    raw = r.text(attrs, n.PROVIDER)
    if raw is not None:
        key = raw.strip().lower()
        provider = n.PROVIDER_ALIASES.get(key) or normalize_provider(key)
    host = r.text(attrs, (n.SERVER_ADDRESS,))
    if host is not None and provider in (None, "openai"):
        host = host.strip().lower()
        if host in n.COMPATIBLE_HOSTS:
            provider = n.COMPATIBLE_HOSTS[host]
        elif host.endswith(n.AZURE_HOST_SUFFIXES):
            provider = "azure.ai.openai"
    if provider is None and model is not None and guess is not None:
        provider = guess(model)
    return provider


def _time(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _id(value: bytes, size: int, field: str) -> str:
    if len(value) != size:
        raise ValidationError(field, f"must be {size} bytes, got {len(value)}")
    if not any(value):
        raise ValidationError(field, "must not be all zeros")
    return value.hex()


def _convert(section: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the section's own validation accepts, one by one (others dropped: a bad
    temperature must not cost the record of a call that happened)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        try:
            out[name] = getattr(section.from_dict({name: value}), name)
        except ValidationError:
            continue
    return out


def _request_parameters(attrs: r.Attrs) -> RequestParameters | None:
    raw: dict[str, Any] = {name: r.first(attrs, keys) for name, keys in n.REQUEST_PARAMETERS.items()}
    values = {name: found[1] for name, found in raw.items() if found is not None}
    invocation = r.json_object(attrs.get(n.OPENINFERENCE_PARAMETERS))
    if invocation is not None:
        for name, keys in n.INVOCATION_PARAMETERS.items():
            if name not in values:
                found = r.first(invocation, keys)
                if found is not None:
                    values[name] = found[1]
    if "top_k" in values:
        values["top_k"] = r.whole(values["top_k"])
    if "stop_sequences" in values:
        values["stop_sequences"] = r.strings(values["stop_sequences"])
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "seed"):
        if name in values:
            values[name] = r.number(values[name])
    converted = _convert(RequestParameters, values)
    return RequestParameters(**converted) if converted else None


def _response_metadata(attrs: r.Attrs) -> ResponseMetadata | None:
    reasons = r.first(attrs, n.FINISH_REASONS)
    finish = None
    if reasons is not None:
        listed = r.strings(reasons[1])
        finish = listed[0] if listed else None
    converted = _convert(
        ResponseMetadata,
        {
            "finish_reason": finish,
            "response_id": r.text(attrs, n.RESPONSE_ID),
            "system_fingerprint": r.text(attrs, n.SYSTEM_FINGERPRINT),
            "service_tier": r.text(attrs, n.RESPONSE_SERVICE_TIER),
        },
    )
    return ResponseMetadata(**converted) if converted else None


def _error(span: SpanView, attrs: r.Attrs) -> ErrorInfo | None:
    error_type = r.text(attrs, (n.ERROR_TYPE,))
    if span.status_code != STATUS_ERROR and error_type is None:
        return None
    exception = span.exception or {}
    http_status = r.whole(attrs.get(n.HTTP_STATUS))
    return ErrorInfo(
        type=error_type or r.text(exception, ("exception.type",)) or "_OTHER",
        message=span.status_message or r.text(exception, ("exception.message",)),
        http_status=http_status if http_status is not None and http_status >= 400 else None,
    )


def _attribution(span: SpanView, attrs: r.Attrs, project: str | None) -> Attribution | None:
    resource = span.resource
    values: dict[str, str | None] = {}
    for field in ATTRIBUTION_FIELDS:  # tokentrail's own attributes (its `otel` sink writes them)
        key = n.TOKENTRAIL_PREFIX + field
        values[field] = r.ident(attrs, (key,)) or r.ident(resource, (key,))
    values["user_id"] = values["user_id"] or r.ident(attrs, n.USER_ID) or r.ident(resource, n.USER_ID)
    values["session_id"] = values["session_id"] or r.ident(attrs, n.SESSION_ID) or r.ident(resource, n.SESSION_ID)
    service = r.text(resource, (n.SERVICE_NAME,))
    if service is not None and service.startswith("unknown_service"):
        service = None  # the SDK's placeholder when the application named nothing
    values["service_name"] = values["service_name"] or service
    values["environment"] = values["environment"] or r.text(resource, n.ENVIRONMENT) or r.text(attrs, n.ENVIRONMENT)
    if project is not None:
        values["project"] = project
    present = {k: v for k, v in values.items() if v is not None}
    return Attribution(**present) if present else None


def _metadata(attrs: r.Attrs) -> dict[str, Any] | None:
    metadata = dict(r.json_object(attrs.get(n.OPENINFERENCE_METADATA)) or {})
    for key, value in attrs.items():
        if key.startswith(n.TOKENTRAIL_METADATA_PREFIX) and value is not None:
            metadata[key[len(n.TOKENTRAIL_METADATA_PREFIX) :]] = value
    return metadata or None


def _provider_specific(span: SpanView, attrs: r.Attrs) -> dict[str, Any] | None:
    extra: dict[str, Any] = {}
    address = r.text(attrs, (n.SERVER_ADDRESS,))
    port = r.whole(attrs.get(n.SERVER_PORT))
    if address is not None:
        extra["server_address"] = address
    if port is not None:
        extra["server_port"] = port
    if span.scope_name:
        extra["otel_scope"] = span.scope_name
        if span.scope_version:
            extra["otel_scope_version"] = span.scope_version
    return extra or None


def _content(attrs: r.Attrs) -> Content | None:
    messages = attrs.get(n.INPUT_MESSAGES)
    result = attrs.get(n.OUTPUT_MESSAGES)
    if messages is None and result is None:
        return None
    return Content(messages=r.json_value(messages), result=r.json_value(result))


def price(
    provider: str | None,
    request_model: str | None,
    provider_model: str | None,
    usage: TokenUsage | None,
    *,
    at: datetime,
    service_tier: str | None,
    reported: Any,
) -> CostBreakdown:
    """Cost at the prices in force at `at`: the response's model first (the one billed), then
    the requested one; a cost the sender reported wins, with ours kept beside it."""
    model = provider_model or request_model
    if usage is None or usage.is_empty:
        cost = CostBreakdown(pricing_status=PricingStatus.UNPRICED, reason="no usage reported")
    elif model is None:
        cost = CostBreakdown(pricing_status=PricingStatus.UNPRICED, reason="no model named")
    elif provider is None:
        cost = CostBreakdown(
            pricing_status=PricingStatus.UNPRICED,
            price_version=price_version(),
            reason=f"no provider named and none is known for model {model!r}",
        )
    else:
        cost = calculate_cost(provider, model, usage, at=at, service_tier=service_tier)
        if cost.total_cost is None and request_model and provider_model and request_model != provider_model:
            retry = calculate_cost(provider, request_model, usage, at=at, service_tier=service_tier)
            if retry.total_cost is not None:
                cost = retry
    if reported is not None:
        cost = apply_provider_reported(cost, reported)
    return cost


def span_to_call(span: SpanView, *, project: str | None = None, guess: ProviderGuess | None = None) -> LLMCall | None:
    """The record of a GenAI span (None for any other span). `project` (a project key's) is
    set on the record; `guess` names the provider of a model when the span does not."""
    attrs = span.attributes
    operation = span_operation(attrs)
    if operation is None:
        return None
    trace_hex = _id(span.trace_id, 16, "trace_id")
    _id(span.span_id, 8, "span_id")
    parent_hex = _id(span.parent_span_id, 8, "parent_span_id") if span.parent_span_id else None
    if span.start_ns <= 0:
        raise ValidationError("start_time_unix_nano", "is required")
    started = _time(span.start_ns)
    completed = None
    if span.end_ns:
        if span.end_ns < span.start_ns:
            raise ValidationError("end_time_unix_nano", "is before start_time_unix_nano")
        completed = _time(span.end_ns)
    request_model = r.text(attrs, n.REQUEST_MODEL)
    provider_model = r.text(attrs, n.RESPONSE_MODEL)
    if request_model is None and provider_model is None:
        invocation = r.json_object(attrs.get(n.OPENINFERENCE_PARAMETERS)) or {}
        request_model = r.text(invocation, ("model",))
        provider_model = r.text(attrs, n.OPENINFERENCE_MODEL)
    provider = span_provider(attrs, provider_model or request_model, guess)
    # In-process tools, agents and workflows: the model calls beneath them carry the usage.
    counted = operation not in n.COMPOSITE_OPERATIONS or span.kind == SPAN_KIND_CLIENT
    usage = span_usage(attrs) if counted else None
    params = _request_parameters(attrs)
    response = _response_metadata(attrs)
    error = _error(span, attrs)
    cost = None
    if counted:
        reported = r.amount(attrs, n.REPORTED_COST)
        tier = (response.service_tier if response else None) or (params.service_tier if params else None)
        cost = price(provider, request_model, provider_model, usage, at=started, service_tier=tier, reported=reported)
    ttft = r.number(attrs.get(n.TIME_TO_FIRST_CHUNK))
    performance = PerformanceMetrics(
        total_duration_ms=(span.end_ns - span.start_ns) / 1e6 if completed is not None else None,
        time_to_first_token_ms=ttft * 1000.0 if ttft is not None and ttft >= 0 else None,
    )
    name_key = n.NAME_OF.get(operation)
    stream = attrs.get("gen_ai.request.stream")
    return LLMCall(
        id=r.text(attrs, (n.TOKENTRAIL_RECORD_ID,)) or record_id(span.trace_id, span.span_id),
        operation=operation,
        started_at=started,
        completed_at=completed,
        provider=provider,
        request_model=request_model,
        provider_model=provider_model,
        name=(r.text(attrs, (name_key,)) or span.name or None) if name_key else None,
        status=CallStatus.ERROR if error is not None else CallStatus.OK,
        error=error,
        trace_id=r.text(attrs, (n.TOKENTRAIL_TRACE_ID,)) or trace_hex,
        parent_id=r.text(attrs, (n.TOKENTRAIL_PARENT_ID,)) or parent_hex,
        token_usage=usage,
        cost_metrics=cost,
        performance_metrics=performance if not performance.is_empty else None,
        request_parameters=params,
        response_metadata=response,
        attribution=_attribution(span, attrs, project),
        metadata=_metadata(attrs),
        provider_specific=_provider_specific(span, attrs),
        streaming=stream if isinstance(stream, bool) else None,
        content=_content(attrs),
    )


__all__ = ["OTLP_NAMESPACE", "price", "record_id", "span_operation", "span_provider", "span_to_call", "span_usage"]
