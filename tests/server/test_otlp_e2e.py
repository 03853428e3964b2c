"""End to end (issue 5): the official `opentelemetry-instrumentation-openai-v2` instruments a
real `openai` client talking to the local mock provider; the real `OTLPSpanExporter`
(HTTP/protobuf, gzip) sends the spans to the collector on 127.0.0.1, which stores priced
records. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from server_helpers import ADMIN, ADMIN_KEY, ThreadServer

from tokentrail.core import LLMCall, ModelOperation, PricingStatus, TokenUsage
from tokentrail.mockprovider import MockProvider
from tokentrail.pricing import calculate_cost
from tokentrail.server import create_app

LONG_PROMPT = "Summarise the quarterly report in three bullet points, please. " * 40


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "e2e-app", "deployment.environment.name": "test"})
    )
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        yield provider
    finally:
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()


def stored(url: str) -> dict[str, LLMCall]:
    response = httpx.get(f"{url}/v1/calls", headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return {call["request_model"]: LLMCall.from_dict(call) for call in response.json()["calls"]}


def test_openai_v2_spans_over_otlp_http_become_priced_records(settings, tracer_provider):
    with ThreadServer(create_app(settings)) as server, MockProvider(port=0) as mock:
        exporter = OTLPSpanExporter(
            endpoint=f"{server.url}/v1/traces",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            compression=Compression.Gzip,
            timeout=10,
        )
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        client = openai.OpenAI(base_url=mock.openai_base_url, api_key="test-key", max_retries=0)
        tracer = tracer_provider.get_tracer("e2e")
        with tracer.start_as_current_span("handle request") as parent:  # not a GenAI span: ignored
            chat = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": LONG_PROMPT}], temperature=0.3
            )
            chunks = list(
                client.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": "Write a haiku about ledgers."}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            embedding = client.embeddings.create(model="text-embedding-3-small", input="quarterly report")
        assert tracer_provider.force_flush(10_000)
        calls = stored(server.url)

    context = parent.get_span_context()
    assert set(calls) == {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}
    stream_usage = chunks[-1].usage
    expected = {
        "gpt-4o-mini": (ModelOperation.CHAT, chat.usage.prompt_tokens, chat.usage.completion_tokens),
        "gpt-4o": (ModelOperation.CHAT, stream_usage.prompt_tokens, stream_usage.completion_tokens),
        "text-embedding-3-small": (ModelOperation.EMBEDDINGS, embedding.usage.prompt_tokens, None),
    }
    for model, (operation, input_tokens, output_tokens) in expected.items():
        call = calls[model]
        assert call.operation is operation and call.provider == "openai"
        assert call.token_usage == TokenUsage.build(input_tokens=input_tokens, output_tokens=output_tokens)
        assert input_tokens > 0
        price = calculate_cost("openai", call.provider_model or model, call.token_usage, at=call.started_at)
        assert call.cost_metrics.pricing_status is PricingStatus.PRICED
        assert call.cost_metrics.total_cost == price.total_cost and price.total_cost > 0
        assert call.trace_id == format(context.trace_id, "032x")
        assert call.parent_id == format(context.span_id, "016x")
        assert call.attribution.service_name == "e2e-app" and call.attribution.environment == "test"
        assert call.completed_at is not None and call.completed_at >= call.started_at
    assert calls["gpt-4o-mini"].request_parameters.temperature == 0.3
    assert calls["gpt-4o-mini"].response_metadata.response_id == chat.id


def test_re_exported_spans_are_not_stored_twice(settings, tracer_provider):
    with ThreadServer(create_app(settings)) as server, MockProvider(port=0) as mock:
        exporters = [
            OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            for _ in range(2)
        ]
        for exporter in exporters:  # two pipelines export every span: a retry after a lost answer
            tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        client = openai.OpenAI(base_url=mock.openai_base_url, api_key="test-key", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert tracer_provider.force_flush(10_000)
        response = httpx.get(f"{server.url}/v1/calls", headers=ADMIN, timeout=10)
    assert len(response.json()["calls"]) == 1
