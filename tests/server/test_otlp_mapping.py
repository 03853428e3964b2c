"""GenAI spans -> call records: each attribute family (current semconv, older names,
OpenInference), token accounting incl. cache and reasoning, provider and attribution."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tokentrail.core import (
    Attribution,
    CallStatus,
    LLMCall,
    ModelOperation,
    PricingStatus,
    TokenUsage,
    ValidationError,
)
from tokentrail.pricing import calculate_cost
from tokentrail.server.api.traces import guess_provider
from tokentrail.server.otlp.decode import SpanView
from tokentrail.server.otlp.genai_map import OTLP_NAMESPACE, record_id, span_to_call, span_usage
from tokentrail.sinks.otel_spans import span_attributes

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
PARENT = bytes.fromhex("00f067aa0ba902b7")
T0 = datetime(2025, 10, 15, 10, 0, tzinfo=UTC)
T0_NS = int(T0.timestamp()) * 1_000_000_000


def span(attrs: dict[str, Any], **fields: Any) -> SpanView:
    values: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "parent_span_id": PARENT,
        "start_ns": T0_NS,
        "end_ns": T0_NS + 1_500_000_000,
        "name": "chat gpt-4o",
        "kind": 3,
        "attributes": attrs,
    }
    values.update(fields)
    return SpanView(**values)


def mapped(attrs: dict[str, Any], **fields: Any) -> LLMCall:
    call = span_to_call(span(attrs, **fields), guess=guess_provider)
    assert call is not None
    # what the server stores must read back as the same record
    assert LLMCall.from_dict(json.loads(json.dumps(call.to_dict()))) == call
    return call


# ---- the current GenAI semantic conventions --------------------------------------------------
def test_current_semconv_span_becomes_a_priced_inclusive_record():
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-123",
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.seed": 42,
        "gen_ai.request.stop_sequences": ["\n\n"],
        "gen_ai.request.choice.count": 2,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_read.input_tokens": 600,
        "gen_ai.usage.reasoning.output_tokens": 50,
        "gen_ai.conversation.id": "conv-9",
        "user.id": "u-1",
        "server.address": "api.openai.com",
        "server.port": 443,
        "openai.response.system_fingerprint": "fp_1",
    }
    resource = {"service.name": "chatbot", "deployment.environment.name": "prod"}
    call = mapped(attrs, resource=resource, scope_name="opentelemetry.instrumentation.openai_v2")
    usage = TokenUsage(
        input_tokens=1000, output_tokens=200, total_tokens=1200, cache_read_tokens=600, reasoning_tokens=50
    )
    assert call.token_usage == usage
    assert call.operation is ModelOperation.CHAT and call.status is CallStatus.OK and call.error is None
    assert (call.provider, call.request_model, call.provider_model) == ("openai", "gpt-4o", "gpt-4o-2024-08-06")
    expected = calculate_cost("openai", "gpt-4o-2024-08-06", usage, at=T0)
    assert call.cost_metrics == expected and expected.total_cost > 0
    assert expected.cache_read_cost > 0  # the cached part is priced at the cache rate
    assert call.id == str(uuid.uuid5(OTLP_NAMESPACE, f"{TRACE.hex()}:{SPAN.hex()}"))
    assert (call.trace_id, call.parent_id) == (TRACE.hex(), PARENT.hex())
    assert call.started_at == T0 and call.completed_at == T0 + timedelta(seconds=1.5)
    assert call.performance_metrics.total_duration_ms == 1500.0
    params = call.request_parameters
    assert (params.temperature, params.top_p, params.max_tokens, params.seed, params.n) == (0.2, 0.9, 512, 42, 2)
    assert params.stop_sequences == ["\n\n"]
    meta = call.response_metadata
    assert (meta.finish_reason, meta.response_id, meta.system_fingerprint) == ("stop", "chatcmpl-123", "fp_1")
    assert call.attribution == Attribution(
        user_id="u-1", session_id="conv-9", service_name="chatbot", environment="prod"
    )
    assert call.provider_specific == {
        "server_address": "api.openai.com",
        "server_port": 443,
        "otel_scope": "opentelemetry.instrumentation.openai_v2",
    }


def test_anthropic_cache_counts_inclusive_as_semconv_says_and_exclusive_as_anthropic_reports():
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_creation.input_tokens": 200,
    }
    # opentelemetry-instrumentation-anthropic and OpenLLMetry add the cache counts to input
    inclusive = mapped({**base, "gen_ai.usage.input_tokens": 1500})
    # a sender passing Anthropic's own `input_tokens` (uncached only) through unchanged
    exclusive = mapped({**base, "gen_ai.usage.input_tokens": 300})
    usage = TokenUsage(
        input_tokens=1500, output_tokens=100, total_tokens=1600, cache_read_tokens=1000, cache_write_tokens=200
    )
    assert inclusive.token_usage == exclusive.token_usage == usage
    assert usage.uncached_input_tokens == 300
    expected = calculate_cost("anthropic", "claude-sonnet-4-5", usage, at=T0)
    assert inclusive.cost_metrics.total_cost == exclusive.cost_metrics.total_cost == expected.total_cost > 0
    assert expected.cache_write_cost > 0 and expected.cache_read_cost > 0


def test_gemini_reasoning_is_part_of_output_and_added_when_reported_apart():
    base = {"gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": "gemini-2.5-flash"}
    # opentelemetry-instrumentation-google-genai adds thoughts to output (inclusive)
    inclusive = span_usage(
        {
            **base,
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 90,
            "gen_ai.usage.reasoning.output_tokens": 60,
        }
    )
    # candidatesTokenCount passed through, thoughts beside it (exclusive): reasoning > output shows it
    exclusive = span_usage(
        {
            **base,
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.reasoning.output_tokens": 60,
        }
    )
    assert (
        inclusive == exclusive == TokenUsage(input_tokens=10, output_tokens=90, total_tokens=100, reasoning_tokens=60)
    )


# ---- the older names -------------------------------------------------------------------------
def test_older_names_gen_ai_system_prompt_tokens_and_gen_ai_openai():
    attrs = {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "o3",
        "gen_ai.usage.prompt_tokens": 400,
        "gen_ai.usage.completion_tokens": 25,
        "gen_ai.openai.request.seed": 7,
        "gen_ai.openai.request.service_tier": "auto",
        "gen_ai.openai.response.service_tier": "flex",
        "gen_ai.openai.response.system_fingerprint": "fp_old",
    }
    call = mapped(attrs)
    assert call.operation is ModelOperation.CHAT  # no operation name: a chat
    usage = TokenUsage(input_tokens=400, output_tokens=25, total_tokens=425)
    assert call.token_usage == usage
    assert call.request_parameters.seed == 7 and call.request_parameters.service_tier == "auto"
    assert call.response_metadata.service_tier == "flex"
    assert call.response_metadata.system_fingerprint == "fp_old"
    # the tier the response reports is the one billed (o3's flex price is half the standard one)
    assert call.cost_metrics == calculate_cost("openai", "o3", usage, at=T0, service_tier="flex")
    assert call.cost_metrics.total_cost < calculate_cost("openai", "o3", usage, at=T0).total_cost


def test_openllmetry_spelling_capitalised_system_and_underscore_cache_names():
    attrs = {
        "gen_ai.system": "Anthropic",
        "llm.request.type": "completion",
        "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "gen_ai.usage.input_tokens": 2000,
        "gen_ai.usage.output_tokens": 10,
        "llm.usage.total_tokens": 2010,
        "gen_ai.usage.cache_read_input_tokens": 1500,
        "gen_ai.usage.cache_creation_input_tokens": 0,
    }
    call = mapped(attrs)
    assert call.provider == "anthropic" and call.operation is ModelOperation.TEXT_COMPLETION
    assert call.token_usage == TokenUsage(
        input_tokens=2000, output_tokens=10, total_tokens=2010, cache_read_tokens=1500, cache_write_tokens=0
    )
    assert call.cost_metrics.total_cost is not None


# ---- OpenInference ---------------------------------------------------------------------------
def test_openinference_llm_span():
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.provider": "anthropic",
        "llm.system": "anthropic",
        "llm.model_name": "claude-sonnet-4-5-20250929",
        "llm.invocation_parameters": json.dumps(
            {"model": "claude-sonnet-4-5", "max_tokens": 1024, "temperature": 0.5, "stop_sequences": ["END"]}
        ),
        "llm.token_count.prompt": 1500,
        "llm.token_count.completion": 300,
        "llm.token_count.total": 1800,
        "llm.token_count.prompt_details.cache_read": 1000,
        "llm.token_count.prompt_details.cache_write": 200,
        "llm.token_count.completion_details.reasoning": 100,
        "session.id": "s-1",
        "user.id": "u-2",
        "metadata": json.dumps({"feature_flag": "beta", "n": 2}),
        "input.value": "ignored",
    }
    call = mapped(attrs, resource={"service.name": "agent"})
    usage = TokenUsage(
        input_tokens=1500,
        output_tokens=300,
        total_tokens=1800,
        cache_read_tokens=1000,
        cache_write_tokens=200,
        reasoning_tokens=100,
    )
    assert call.token_usage == usage
    assert (call.provider, call.request_model, call.provider_model) == (
        "anthropic",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    )
    assert call.cost_metrics == calculate_cost("anthropic", "claude-sonnet-4-5-20250929", usage, at=T0)
    assert call.cost_metrics.total_cost > 0
    params = call.request_parameters
    assert (params.max_tokens, params.temperature, params.stop_sequences) == (1024, 0.5, ["END"])
    assert call.attribution == Attribution(user_id="u-2", session_id="s-1", service_name="agent")
    assert call.metadata == {"feature_flag": "beta", "n": 2}


def test_openinference_embedding_span_and_provider_spellings():
    call = mapped(
        {
            "openinference.span.kind": "EMBEDDING",
            "llm.system": "openai",
            "embedding.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 800,
            "llm.token_count.total": 800,
        }
    )
    assert call.operation is ModelOperation.EMBEDDINGS and call.provider == "openai"
    assert call.token_usage == TokenUsage(input_tokens=800, total_tokens=800)
    expected = calculate_cost("openai", "text-embedding-3-small", call.token_usage, at=T0)
    assert call.cost_metrics.total_cost == expected.total_cost > 0
    aws = mapped({"openinference.span.kind": "LLM", "llm.provider": "aws", "llm.model_name": "m"})
    assert aws.provider == "aws.bedrock"


@pytest.mark.parametrize(
    "attrs",
    [
        {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat/completions"},
        {"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o"},
        {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb"},
        {"gen_ai.conversation.id": "c-1"},  # context alone does not make a model call
    ],
    ids=["http", "openinference-chain", "unknown-operation", "context-only"],
)
def test_spans_that_are_not_genai_calls_are_ignored(attrs):
    assert span_to_call(span(attrs)) is None


# ---- operations, status, provider ------------------------------------------------------------
def test_in_process_agent_spans_are_stored_without_usage_remote_ones_priced():
    attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "planner",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 5000,  # the sum of the model calls beneath it
        "gen_ai.usage.output_tokens": 500,
    }
    internal = mapped(attrs, kind=1)
    assert internal.operation is ModelOperation.INVOKE_AGENT and internal.name == "planner"
    assert internal.token_usage is None and internal.cost_metrics is None
    remote = mapped(attrs, kind=3)  # e.g. a hosted agent: no model spans of ours beneath it
    assert remote.token_usage.input_tokens == 5000 and remote.cost_metrics.total_cost > 0


def test_error_status_and_error_type():
    failed = mapped(
        {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
        status_code=2,
        status_message="Error code: 429",
        exception={"exception.type": "openai.RateLimitError", "exception.message": "slow down"},
    )
    assert failed.status is CallStatus.ERROR
    assert (failed.error.type, failed.error.message) == ("openai.RateLimitError", "Error code: 429")
    assert failed.cost_metrics.pricing_status is PricingStatus.UNPRICED  # no usage: never $0
    typed = mapped(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "error.type": "timeout",
            "http.response.status_code": 504,
        }
    )
    assert typed.status is CallStatus.ERROR
    assert (typed.error.type, typed.error.http_status) == ("timeout", 504)


@pytest.mark.parametrize(
    ("attrs", "provider"),
    [
        ({"gen_ai.system": "az.ai.openai"}, "azure.ai.openai"),
        ({"gen_ai.provider.name": "aws.bedrock"}, "aws.bedrock"),
        ({"gen_ai.system": "vertex_ai"}, "gcp.vertex_ai"),
        ({"gen_ai.system": "openai", "server.address": "api.groq.com"}, "groq"),
        ({"gen_ai.system": "openai", "server.address": "my-res.openai.azure.com"}, "azure.ai.openai"),
        ({"gen_ai.system": "anthropic", "server.address": "api.groq.com"}, "anthropic"),
        ({}, "anthropic"),  # none named: guessed from the model
    ],
)
def test_provider_is_normalised(attrs, provider):
    call = mapped({"gen_ai.request.model": "claude-3-5-haiku-20241022", **attrs})
    assert call.provider == provider


def test_provider_reported_cost_wins_and_keeps_the_computed_one():
    attrs = {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10,
        "gen_ai.usage.cost": 0.0123,
    }
    call = mapped(attrs)
    computed = calculate_cost("openai", "gpt-4o", call.token_usage, at=T0).total_cost
    assert call.cost_metrics.pricing_status is PricingStatus.PROVIDER_REPORTED
    assert call.cost_metrics.total_cost == Decimal("0.0123") and call.cost_metrics.computed_cost == computed


def test_unknown_model_is_unpriced_not_zero():
    call = mapped(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "no-such-model-x",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 1,
        }
    )
    assert call.cost_metrics.pricing_status is PricingStatus.UNPRICED and call.cost_metrics.total_cost is None


def test_counts_may_arrive_as_integral_doubles_or_digit_strings():
    usage = span_usage({"gen_ai.usage.input_tokens": 12.0, "gen_ai.usage.output_tokens": "3"})
    assert usage == TokenUsage(input_tokens=12, output_tokens=3, total_tokens=15)


def test_malformed_optional_values_are_dropped_not_fatal():
    call = mapped(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.request.temperature": "hot",
            "gen_ai.request.max_tokens": -1,
            "gen_ai.request.top_k": 40.0,
            "llm.invocation_parameters": "{not json",
        }
    )
    assert call.request_parameters.to_dict() == {"top_k": 40}


# ---- identity --------------------------------------------------------------------------------
def test_record_id_is_deterministic_per_trace_and_span():
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}
    first, again = mapped(attrs), mapped(dict(attrs))
    other = mapped(attrs, span_id=bytes.fromhex("b7ad6b7169203332"))
    assert first.id == again.id == record_id(TRACE, SPAN) and other.id != first.id
    assert uuid.UUID(first.id).version == 5


def test_project_key_project_is_set():
    call = mapped({"gen_ai.system": "openai", "tokentrail.project": "theirs"})
    assert call.attribution.project == "theirs"  # an admin key keeps the span's own
    owned = span_to_call(span({"gen_ai.system": "openai", "tokentrail.project": "theirs"}), project="mine")
    assert owned.attribution.project == "mine"


def test_a_span_from_tokentrails_own_otel_sink_maps_back_to_its_record():
    usage = TokenUsage(input_tokens=900, output_tokens=40, total_tokens=940, cache_read_tokens=512)
    original = LLMCall.new(
        ModelOperation.CHAT,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=2),
        provider="openai",
        request_model="gpt-4o-mini",
        token_usage=usage,
        cost_metrics=calculate_cost("openai", "gpt-4o-mini", usage, at=T0),
        attribution=Attribution(project="web", user_id="u-7", tenant_id="acme", feature="search"),
        metadata={"ticket": "T-1"},
        trace_id="11111111-2222-7333-8444-555555555555",
    )
    view = span(span_attributes(original, capture_content=False), end_ns=T0_NS + 2_000_000_000)
    back = span_to_call(view)
    assert back.id == original.id and back.trace_id == original.trace_id
    assert back.token_usage == usage and back.cost_metrics.total_cost == original.cost_metrics.total_cost
    assert back.attribution == original.attribution
    assert back.metadata == {"ticket": "T-1"}


# ---- invalid GenAI spans are rejected, naming the field --------------------------------------
@pytest.mark.parametrize(
    ("attrs", "fields", "field"),
    [
        ({"gen_ai.usage.input_tokens": -5}, {}, "attributes.gen_ai.usage.input_tokens"),
        ({"gen_ai.usage.input_tokens": 1.5}, {}, "attributes.gen_ai.usage.input_tokens"),
        ({"llm.token_count.prompt": "many"}, {}, "attributes.llm.token_count.prompt"),
        ({"gen_ai.usage.input_tokens": True}, {}, "attributes.gen_ai.usage.input_tokens"),
        ({"gen_ai.usage.cache_read.input_tokens": 5}, {}, "token_usage.cache_read_tokens"),
        ({"gen_ai.usage.cost": -1}, {}, "attributes.gen_ai.usage.cost"),
        ({}, {"trace_id": b"\x01" * 8}, "trace_id"),
        ({}, {"trace_id": b"\x00" * 16}, "trace_id"),
        ({}, {"span_id": b""}, "span_id"),
        ({}, {"parent_span_id": b"\x01" * 4}, "parent_span_id"),
        ({}, {"start_ns": 0}, "start_time_unix_nano"),
        ({}, {"end_ns": T0_NS - 1}, "end_time_unix_nano"),
    ],
)
def test_invalid_genai_spans_raise_naming_the_field(attrs, fields, field):
    with pytest.raises(ValidationError) as raised:
        span_to_call(span({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", **attrs}, **fields))
    assert raised.value.field == field
