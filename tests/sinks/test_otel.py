"""The otel sink against the real OpenTelemetry SDK (in-memory span exporter and metric reader).

Expected names, units and bucket boundaries are written out here from semantic conventions
v1.41.0 (docs/gen-ai/gen-ai-spans.md, gen-ai-metrics.md, openai.md) and, for the optional
per-category counters, semantic-conventions-genai docs/gen-ai/gen-ai-token-metrics.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tokentrail.core import (
    Attribution,
    Content,
    CostBreakdown,
    ErrorInfo,
    LLMCall,
    PerformanceMetrics,
    PricingStatus,
    RequestParameters,
    ResponseMetadata,
    TokenUsage,
)
from tokentrail.core.settings import Settings
from tokentrail.sinks.otel import OTelSink, otel_span_id, otel_trace_id

TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
SECONDS_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T0_NS = 1740830400123456000  # 2025-03-01T12:00:00.123456Z, computed independently of the sink


# ---- harness ------------------------------------------------------------------------------
@pytest.fixture
def otel():
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield SimpleNamespace(
        exporter=exporter, tracer_provider=tracer_provider, reader=reader, meter_provider=meter_provider
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()


def make_sink(otel: Any, **kwargs: Any) -> OTelSink:
    extra = {k: kwargs.pop(k) for k in ("parent_wait_seconds", "max_waiting", "max_remembered") if k in kwargs}
    return OTelSink(
        Settings(**kwargs), tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, **extra
    )


def spans_by_name(otel: Any) -> dict[str, Any]:
    spans = otel.exporter.get_finished_spans()
    by_name = {span.name: span for span in spans}
    assert len(by_name) == len(spans), "span names must be unique within a test"
    return by_name


def metrics(otel: Any) -> dict[str, Any]:
    data = otel.reader.get_metrics_data()
    out: dict[str, Any] = {}
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == "tokentrail"
            for metric in scope_metrics.metrics:
                out[metric.name] = metric
    return out


def point(metric: Any, **attrs: Any) -> Any:
    """The one data point whose attributes include all of `attrs`."""
    found = [p for p in metric.data.data_points if all(p.attributes.get(k) == v for k, v in attrs.items())]
    assert len(found) == 1, (
        f"{metric.name}: {len(found)} points match {attrs}: {[dict(p.attributes) for p in metric.data.data_points]}"
    )
    return found[0]


# ---- records ------------------------------------------------------------------------------
def chat_call(**changes: Any) -> LLMCall:
    call = LLMCall(
        id="0195a1b2-0000-7000-8000-000000000001",
        operation="chat",
        provider="openai",
        request_model="gpt-4o",
        provider_model="gpt-4o-2024-08-06",
        started_at=T0,
        completed_at=T0 + timedelta(seconds=1.5),
        trace_id="0195a1b2-0000-7000-8000-0000000000aa",
        token_usage=TokenUsage(
            input_tokens=1200, output_tokens=300, total_tokens=1500, cache_read_tokens=1000, reasoning_tokens=128
        ),
        cost_metrics=CostBreakdown(
            input_cost=Decimal("0.0005"),
            cache_read_cost=Decimal("0.00125"),
            output_cost=Decimal("0.003"),
            total_cost=Decimal("0.00475"),
            pricing_status=PricingStatus.PRICED,
            price_version="genai-prices 0.2.3",
        ),
        request_parameters=RequestParameters(
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            max_tokens=512,
            frequency_penalty=0.1,
            presence_penalty=0.3,
            stop_sequences=["END"],
            seed=42,
            n=2,
            service_tier="auto",
        ),
        response_metadata=ResponseMetadata(
            finish_reason="stop",
            response_id="chatcmpl-abc",
            request_id="req_123",
            client_request_id="client-1",
            system_fingerprint="fp_44709d6fcb",
            service_tier="default",
        ),
        attribution=Attribution(project="shop", user_id="u-7", session_id="sess-9", tenant_id="acme", feature="search"),
        provider_specific={"server_address": "api.openai.com", "server_port": 443},
        metadata={"prompt_version": "v2", "tags": ["a", "b"], "nested": {"k": 1}},
        streaming=False,
        attempt=2,
        estimated=False,
    )
    return call.replace(**changes) if changes else call


def anthropic_cache_write_call() -> LLMCall:
    return LLMCall(
        id="rec-anthropic",
        operation="chat",
        provider="anthropic",
        request_model="claude-sonnet-4-5",
        started_at=T0,
        completed_at=T0 + timedelta(milliseconds=800),
        token_usage=TokenUsage.build(input_tokens=2100, output_tokens=50, cache_write_tokens=2000),
        request_parameters=RequestParameters(service_tier="standard_only"),
        response_metadata=ResponseMetadata(service_tier="standard", finish_reason="end_turn"),
    )


def error_call() -> LLMCall:
    return LLMCall(
        id="rec-error",
        operation="chat",
        provider="anthropic",
        request_model="claude-3-5-haiku",
        status="error",
        error=ErrorInfo(type="RateLimitError", message="rate limited", http_status=429),
        started_at=T0,
        completed_at=T0 + timedelta(milliseconds=250),
    )


def embeddings_call() -> LLMCall:
    return LLMCall(
        id="rec-embed",
        operation="embeddings",
        provider="openai",
        started_at=T0,
        completed_at=T0 + timedelta(milliseconds=50),
        token_usage=TokenUsage(input_tokens=8),
    )


def streaming_call() -> LLMCall:
    # no completed_at: the span ends after the measured total duration
    return LLMCall(
        id="rec-stream",
        operation="generate_content",
        provider="gcp.gemini",
        provider_model="gemini-2.5-flash",
        started_at=T0,
        streaming=True,
        token_usage=TokenUsage.build(input_tokens=10, output_tokens=20, audio_input_tokens=4),
        performance_metrics=PerformanceMetrics(time_to_first_token_ms=350.0, total_duration_ms=2000.0),
    )


def content_call() -> LLMCall:
    return LLMCall(
        id="rec-content",
        operation="chat",
        provider="openai",
        request_model="gpt-4o-mini",
        started_at=T0,
        completed_at=T0 + timedelta(seconds=1),
        content=Content(
            messages=[{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}],
            result=[{"role": "assistant", "parts": [{"type": "text", "content": "Rainy."}], "finish_reason": "stop"}],
        ),
    )


# ---- spans --------------------------------------------------------------------------------
def test_chat_span_name_kind_times_and_every_attribute(otel):
    make_sink(otel).write([chat_call()])
    span = spans_by_name(otel)["chat gpt-4o"]
    assert span.kind is SpanKind.CLIENT
    assert span.start_time == T0_NS
    assert span.end_time == T0_NS + 1_500_000_000
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None
    assert span.instrumentation_scope.name == "tokentrail"
    assert span.instrumentation_scope.schema_url == "https://opentelemetry.io/schemas/1.41.0"
    assert dict(span.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-abc",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.top_k": 40.0,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.3,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 42,
        "gen_ai.request.choice.count": 2,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.reasoning.output_tokens": 128,
        "gen_ai.conversation.id": "sess-9",
        "openai.request.service_tier": "auto",
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_44709d6fcb",
        "server.address": "api.openai.com",
        "server.port": 443,
        "user.id": "u-7",
        "session.id": "sess-9",
        "tokentrail.record.id": "0195a1b2-0000-7000-8000-000000000001",
        "tokentrail.trace_id": "0195a1b2-0000-7000-8000-0000000000aa",
        "tokentrail.status": "ok",
        "tokentrail.request_id": "req_123",
        "tokentrail.client_request_id": "client-1",
        "tokentrail.streaming": False,
        "tokentrail.usage.total_tokens": 1500,
        "tokentrail.pricing_status": "priced",
        "tokentrail.cost.total": "0.00475",
        "tokentrail.cost.total_usd": 0.00475,
        "tokentrail.cost.input": "0.0005",
        "tokentrail.cost.cache_read": "0.00125",
        "tokentrail.cost.output": "0.003",
        "tokentrail.cost.currency": "USD",
        "tokentrail.price_version": "genai-prices 0.2.3",
        "tokentrail.project": "shop",
        "tokentrail.user_id": "u-7",
        "tokentrail.session_id": "sess-9",
        "tokentrail.tenant_id": "acme",
        "tokentrail.feature": "search",
        "tokentrail.estimated": False,
        "tokentrail.attempt": 2,
        "tokentrail.metadata.prompt_version": "v2",
        "tokentrail.metadata.tags": ("a", "b"),
        "tokentrail.metadata.nested": '{"k": 1}',
    }


def test_cache_creation_and_service_tier_outside_openai(otel):
    make_sink(otel).write([anthropic_cache_write_call()])
    attrs = spans_by_name(otel)["chat claude-sonnet-4-5"].attributes
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 2000
    assert attrs["gen_ai.usage.input_tokens"] == 2100
    assert "gen_ai.usage.cache_read.input_tokens" not in attrs
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    # openai.* attributes are only for OpenAI-format providers
    assert not [key for key in attrs if key.startswith("openai.")]
    assert attrs["tokentrail.request.service_tier"] == "standard_only"
    assert attrs["tokentrail.response.service_tier"] == "standard"
    assert "gen_ai.response.model" not in attrs
    assert "tokentrail.cost.total" not in attrs


def test_error_record_has_error_status_and_error_type(otel):
    make_sink(otel).write([error_call()])
    span = spans_by_name(otel)["chat claude-3-5-haiku"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RateLimitError: rate limited"
    assert span.attributes["error.type"] == "RateLimitError"
    assert span.attributes["tokentrail.status"] == "error"
    assert span.attributes["tokentrail.error.http_status"] == 429
    assert span.end_time - span.start_time == 250_000_000
    assert not [key for key in span.attributes if key.startswith("gen_ai.usage.")]


def test_embeddings_without_model_is_named_by_operation_only(otel):
    make_sink(otel).write([embeddings_call()])
    span = spans_by_name(otel)["embeddings"]
    assert span.kind is SpanKind.CLIENT
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.usage.input_tokens"] == 8
    assert "gen_ai.request.model" not in span.attributes
    assert "gen_ai.usage.output_tokens" not in span.attributes


def test_model_falls_back_to_the_response_model_and_tools_to_their_name(otel):
    tool = LLMCall(id="rec-tool", operation="execute_tool", name="search_db", started_at=T0, completed_at=T0)
    workflow = LLMCall(
        id="rec-wf",
        operation="invoke_workflow",
        started_at=T0,
        completed_at=T0 + timedelta(seconds=3),
        attribution=Attribution(workflow="checkout"),
    )
    make_sink(otel).write([streaming_call(), tool, workflow])
    spans = spans_by_name(otel)
    assert set(spans) == {"generate_content gemini-2.5-flash", "execute_tool search_db", "invoke_workflow checkout"}
    assert spans["execute_tool search_db"].kind is SpanKind.INTERNAL
    assert spans["execute_tool search_db"].attributes["gen_ai.tool.name"] == "search_db"
    assert spans["invoke_workflow checkout"].kind is SpanKind.INTERNAL
    assert spans["invoke_workflow checkout"].attributes["gen_ai.workflow.name"] == "checkout"


def test_streaming_record_with_time_to_first_token(otel):
    make_sink(otel).write([streaming_call()])
    span = spans_by_name(otel)["generate_content gemini-2.5-flash"]
    assert span.start_time == T0_NS
    assert span.end_time == T0_NS + 2_000_000_000
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.35)
    assert span.attributes["tokentrail.time_to_first_token_ms"] == 350.0
    assert span.attributes["tokentrail.streaming"] is True
    assert span.attributes["tokentrail.usage.audio_input_tokens"] == 4
    # non-streamed calls do not carry gen_ai.request.stream at all (v1.41: set iff streaming)
    make_sink(otel).write([chat_call()])
    assert "gen_ai.request.stream" not in spans_by_name(otel)["chat gpt-4o"].attributes


@pytest.mark.parametrize("capture", [True, False])
def test_message_content_only_when_capture_is_on(otel, capture):
    make_sink(otel, capture_content=capture).write([content_call(), chat_call()])
    spans = spans_by_name(otel)
    attrs = spans["chat gpt-4o-mini"].attributes
    if capture:
        assert json.loads(attrs["gen_ai.input.messages"]) == content_call().content.messages
        assert json.loads(attrs["gen_ai.output.messages"]) == content_call().content.result
    else:
        assert "gen_ai.input.messages" not in attrs
        assert "gen_ai.output.messages" not in attrs
    # a record without content never gets the attributes
    assert "gen_ai.input.messages" not in spans["chat gpt-4o"].attributes


# ---- linkage ------------------------------------------------------------------------------
def test_otel_ids_from_record_ids():
    assert otel_trace_id("0af7651916cd43dd8448eb211c80319c") == 0x0AF7651916CD43DD8448EB211C80319C
    assert otel_trace_id("0195A1B2-0000-7000-8000-0000000000AA") == 0x0195A1B2000070008000_0000000000AA
    assert otel_trace_id("0" * 32) is None
    assert otel_trace_id("not-a-trace") is None
    assert otel_span_id("b7ad6b7169203331") == 0xB7AD6B7169203331
    assert otel_span_id("0195a1b2-0000-7000-8000-000000000001") is None
    assert otel_span_id("0" * 16) is None


def test_record_inside_an_otel_trace_becomes_a_child_of_the_remote_span(otel):
    call = chat_call(trace_id="0af7651916cd43dd8448eb211c80319c", parent_id="b7ad6b7169203331")
    make_sink(otel).write([call])
    span = spans_by_name(otel)["chat gpt-4o"]
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.parent.span_id == 0xB7AD6B7169203331
    assert span.parent.is_remote
    assert span.attributes["tokentrail.parent_id"] == "b7ad6b7169203331"


def test_worker_thread_context_never_becomes_the_parent(otel):
    tracer = otel.tracer_provider.get_tracer("host-app")
    sink = make_sink(otel)
    with tracer.start_as_current_span("unrelated request"):
        sink.write([chat_call()])
    assert spans_by_name(otel)["chat gpt-4o"].parent is None


def _child(record_id: str, parent: str, model: str) -> LLMCall:
    return LLMCall(
        id=record_id,
        operation="chat",
        provider="openai",
        request_model=model,
        parent_id=parent,
        started_at=T0 + timedelta(seconds=1),
        completed_at=T0 + timedelta(seconds=2),
        token_usage=TokenUsage.build(input_tokens=5, output_tokens=5),
    )


def _workflow(record_id: str = "0195a1b2-0000-7000-8000-00000000f10f") -> LLMCall:
    return LLMCall(
        id=record_id,
        operation="invoke_workflow",
        name="checkout",
        started_at=T0,
        completed_at=T0 + timedelta(seconds=5),
    )


def test_children_wait_for_their_workflow_and_are_parented_to_it(otel):
    sink = make_sink(otel)
    wf = _workflow()
    sink.write([_child("c1", wf.id, "m1"), _child("c2", wf.id, "m2")])
    assert otel.exporter.get_finished_spans() == ()
    assert sink.waiting == 2
    # metrics are not held back
    usage = metrics(otel)["gen_ai.client.token.usage"]
    assert point(usage, **{"gen_ai.request.model": "m1", "gen_ai.token.type": "input"}).sum == 5
    sink.write([wf])
    assert sink.waiting == 0
    spans = spans_by_name(otel)
    parent = spans["invoke_workflow checkout"]
    assert parent.parent is None
    for name in ("chat m1", "chat m2"):
        assert spans[name].parent.span_id == parent.context.span_id
        assert spans[name].context.trace_id == parent.context.trace_id
    # a later child of an already-emitted workflow is linked at once
    sink.write([_child("c3", wf.id, "m3")])
    assert spans_by_name(otel)["chat m3"].parent.span_id == parent.context.span_id


def test_parent_in_the_same_batch_after_its_children(otel):
    wf = _workflow()
    grandchild = _child("g1", "c1", "m-grand")
    make_sink(otel).write([grandchild, _child("c1", wf.id, "m1"), wf])
    spans = spans_by_name(otel)
    assert spans["chat m1"].parent.span_id == spans["invoke_workflow checkout"].context.span_id
    assert spans["chat m-grand"].parent.span_id == spans["chat m1"].context.span_id
    assert len({span.context.trace_id for span in spans.values()}) == 1


def test_children_whose_parent_never_comes_are_released(otel):
    sink = make_sink(otel, parent_wait_seconds=0.05)
    sink.write([_child("c1", "missing-parent", "m1")])
    sink.flush()
    assert sink.waiting == 1  # flush alone does not give up on the parent before the wait is over
    time.sleep(0.06)
    sink.write([])
    assert sink.waiting == 0
    span = spans_by_name(otel)["chat m1"]
    assert span.parent is None
    assert span.attributes["tokentrail.parent_id"] == "missing-parent"


def test_waiting_is_bounded_and_close_releases_the_rest(otel):
    sink = make_sink(otel, max_waiting=1)
    sink.write([_child("c1", "parent-a", "m1"), _child("c2", "parent-b", "m2")])
    assert [span.name for span in otel.exporter.get_finished_spans()] == ["chat m1"]
    assert sink.waiting == 1
    sink.close()
    assert sink.waiting == 0
    assert {span.name for span in otel.exporter.get_finished_spans()} == {"chat m1", "chat m2"}


def test_self_parented_record_is_a_root(otel):
    call = _child("c1", "c1", "m1")
    make_sink(otel).write([call])
    assert spans_by_name(otel)["chat m1"].parent is None


def test_one_bad_record_does_not_stop_the_batch(otel):
    class Broken:
        id = "broken"

    sink = make_sink(otel)
    with pytest.raises(AttributeError):
        sink.write([Broken(), chat_call()])  # type: ignore[list-item]
    assert set(spans_by_name(otel)) == {"chat gpt-4o"}


# ---- metrics ------------------------------------------------------------------------------
def test_histograms_use_the_semconv_bucket_boundaries(otel):
    make_sink(otel).write([chat_call(), streaming_call()])
    found = metrics(otel)
    usage = found["gen_ai.client.token.usage"]
    assert usage.unit == "{token}"
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    input_point = point(usage, **{"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"})
    assert dict(input_point.attributes) == {**base, "gen_ai.token.type": "input"}
    assert list(input_point.explicit_bounds) == TOKEN_BOUNDS
    assert input_point.sum == 1200
    assert input_point.bucket_counts[TOKEN_BOUNDS.index(4096)] == 1  # 1024 < 1200 <= 4096
    output_point = point(usage, **{"gen_ai.token.type": "output", "gen_ai.request.model": "gpt-4o"})
    assert output_point.sum == 300

    duration = found["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    chat_duration = point(duration, **{"gen_ai.operation.name": "chat"})
    assert dict(chat_duration.attributes) == base
    assert list(chat_duration.explicit_bounds) == SECONDS_BOUNDS
    assert chat_duration.sum == pytest.approx(1.5)
    assert point(duration, **{"gen_ai.operation.name": "generate_content"}).sum == pytest.approx(2.0)

    ttfc = found["gen_ai.client.operation.time_to_first_chunk"]
    assert ttfc.unit == "s"
    assert len(ttfc.data.data_points) == 1  # only the streamed call
    stream_point = point(ttfc, **{"gen_ai.provider.name": "gcp.gemini"})
    assert list(stream_point.explicit_bounds) == SECONDS_BOUNDS
    assert stream_point.sum == pytest.approx(0.35)
    assert stream_point.bucket_counts[SECONDS_BOUNDS.index(0.64)] == 1  # 0.32 < 0.35 <= 0.64

    request_ms = found["tokentrail.request_duration_ms"]
    assert request_ms.unit == "ms"
    ms_point = point(request_ms, model="gpt-4o")
    assert list(ms_point.explicit_bounds) == [b * 1000 for b in SECONDS_BOUNDS]
    assert ms_point.sum == pytest.approx(1500.0)


def test_error_record_metrics_carry_error_type(otel):
    make_sink(otel).write([error_call()])
    found = metrics(otel)
    duration = point(found["gen_ai.client.operation.duration"], **{"error.type": "RateLimitError"})
    assert duration.sum == pytest.approx(0.25)
    # no usage reported: no token points, no cost
    assert "gen_ai.client.token.usage" not in found
    assert "tokentrail.cost" not in found
    assert point(found["tokentrail.request_duration_ms"], status="error").sum == pytest.approx(250.0)


def test_cost_counters(otel):
    sink = make_sink(otel)
    sink.write([chat_call(), chat_call(id="second")])
    found = metrics(otel)
    cost = found["tokentrail.cost"]
    assert cost.unit == "USD"
    assert cost.data.is_monotonic
    cost_point = point(cost, **{"gen_ai.request.model": "gpt-4o"})
    assert dict(cost_point.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "tokentrail.status": "ok",
        "tokentrail.pricing_status": "priced",
        "tokentrail.project": "shop",
        "tokentrail.feature": "search",
    }
    assert cost_point.value == pytest.approx(2 * 0.00475)
    cost_total = point(found["tokentrail.cost_total"], model="gpt-4o")
    assert dict(cost_total.attributes) == {"model": "gpt-4o", "operation": "chat", "status": "ok"}
    assert cost_total.value == pytest.approx(0.0095)


def test_semantic_kernel_style_token_counter(otel):
    make_sink(otel).write([chat_call(), embeddings_call()])
    tokens = metrics(otel)["tokentrail.tokens_total"]
    assert tokens.data.is_monotonic
    expected = {"input": 1200, "output": 300, "total": 1500, "cache_read": 1000, "reasoning": 128}
    for token_type, value in expected.items():
        p = point(tokens, model="gpt-4o", token_type=token_type)
        assert dict(p.attributes) == {"model": "gpt-4o", "operation": "chat", "status": "ok", "token_type": token_type}
        assert p.value == value
    assert not [p for p in tokens.data.data_points if p.attributes["token_type"] == "cache_write"]
    embed_input = point(tokens, operation="embeddings", token_type="input")
    assert "model" not in embed_input.attributes
    assert embed_input.value == 8


NEW_COUNTERS = {
    "gen_ai.client.inference.usage.input_tokens",
    "gen_ai.client.inference.usage.output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens",
    "gen_ai.client.inference.usage.cache_write.input_tokens",
    "gen_ai.client.inference.usage.reasoning.output_tokens",
    "gen_ai.client.inference.operation.input_tokens",
    "gen_ai.client.inference.operation.output_tokens",
}


def test_per_category_usage_counters_are_off_by_default(otel):
    make_sink(otel).write([chat_call(), streaming_call()])
    found = metrics(otel)
    assert not NEW_COUNTERS & set(found)
    assert "gen_ai.client.token.usage" in found


def test_per_category_usage_counters_when_enabled(otel):
    make_sink(otel, otel_usage_counters=True).write(
        [chat_call(), anthropic_cache_write_call(), streaming_call(), error_call()]
    )
    found = metrics(otel)
    assert set(found) >= NEW_COUNTERS
    assert "gen_ai.client.token.usage" in found  # the v1.41 histogram stays
    gpt = {"gen_ai.request.model": "gpt-4o"}
    expected = {
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read.input_tokens": 1000,
        "cache_write.input_tokens": 0,
        "reasoning.output_tokens": 128,
    }
    for suffix, value in expected.items():
        metric = found[f"gen_ai.client.inference.usage.{suffix}"]
        assert metric.unit == "{token}"
        assert metric.data.is_monotonic
        assert point(metric, **gpt, **{"gen_ai.token.modality": "unknown"}).value == value
    claude = {"gen_ai.request.model": "claude-sonnet-4-5"}
    cache_write = found["gen_ai.client.inference.usage.cache_write.input_tokens"]
    assert point(cache_write, **claude).value == 2000
    # audio is reported under its own modality, the rest as unknown
    gemini_input = found["gen_ai.client.inference.usage.input_tokens"]
    assert point(gemini_input, **{"gen_ai.provider.name": "gcp.gemini", "gen_ai.token.modality": "audio"}).value == 4
    assert point(gemini_input, **{"gen_ai.provider.name": "gcp.gemini", "gen_ai.token.modality": "unknown"}).value == 6
    # a failed inference call counts 0 tokens under `unknown`; only the histograms carry error.type
    failed = point(gemini_input, **{"gen_ai.request.model": "claude-3-5-haiku"})
    assert failed.value == 0
    assert failed.attributes["gen_ai.token.modality"] == "unknown"
    assert "error.type" not in failed.attributes
    per_op = found["gen_ai.client.inference.operation.input_tokens"]
    failed_op = point(per_op, **{"error.type": "RateLimitError"})
    assert failed_op.sum == 0
    assert list(failed_op.explicit_bounds) == TOKEN_BOUNDS
    assert point(per_op, **gpt).sum == 1200
    assert point(found["gen_ai.client.inference.operation.output_tokens"], **gpt).sum == 300


def test_global_providers_are_used_when_none_are_given():
    # Run in a fresh interpreter: the global providers can be set only once per process.
    code = textwrap.dedent(
        """
        from datetime import UTC, datetime
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from tokentrail.core import LLMCall, TokenUsage
        from tokentrail.core.settings import Settings
        from tokentrail.sinks.otel import OTelSink

        sink = OTelSink(Settings())  # created before the application sets its providers
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        sink.write([LLMCall(id="r1", operation="chat", request_model="m", started_at=datetime.now(UTC),
                            token_usage=TokenUsage(input_tokens=3))])
        sink.flush()
        names = [m.name for rm in reader.get_metrics_data().resource_metrics
                 for sm in rm.scope_metrics for m in sm.metrics]
        print([s.name for s in exporter.get_finished_spans()], "gen_ai.client.token.usage" in names)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['chat m'] True"


def test_missing_otel_extra_raises_missing_extra_error():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        from tokentrail.core import MissingExtraError
        from tokentrail.core.settings import Settings
        import tokentrail.sinks.otel as otel_sink  # importing the module needs no OpenTelemetry
        try:
            otel_sink.OTelSink(Settings())
        except MissingExtraError as exc:
            print("extra=" + exc.extra)
            print(exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines == ["extra=otel", "the otel sink needs the 'otel' extra: pip install 'tokentrail[otel]'"]


def test_bad_waiting_settings_are_rejected(otel):
    with pytest.raises(ValueError, match="parent_wait_seconds"):
        make_sink(otel, parent_wait_seconds=-1)
    with pytest.raises(ValueError, match="max_waiting"):
        make_sink(otel, max_waiting=-1)
