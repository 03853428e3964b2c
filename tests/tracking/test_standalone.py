from __future__ import annotations

from datetime import timedelta

import pytest

from tokentrail.core import PricingStatus
from tokentrail.pricing import calculate_cost
from tokentrail.tracking import (
    log_embedding_usage,
    log_llm_usage,
    log_ocr_usage,
    set_llm_attributes,
    set_token_usage,
    track_llm_call,
)
from tokentrail.tracking.estimate import count_message_tokens, count_tokens


def test_log_llm_usage_dates_the_call_back_by_its_latency(sink, clock):
    record = log_llm_usage(
        "openai",
        "gpt-4o-mini",
        input_tokens=100,
        output_tokens=50,
        latency_ms=800,
        metadata={"custom_field": "value"},
        request_kind="rag",
    )
    call = sink.one()
    assert record == call
    assert call.completed_at == clock.now()
    assert call.started_at == clock.now() - timedelta(milliseconds=800)
    assert call.performance_metrics.total_duration_ms == pytest.approx(800)
    assert call.performance_metrics.tokens_per_second == pytest.approx(50 / 0.8)
    assert call.metadata == {"request_kind": "rag", "custom_field": "value"}
    assert call.cost_metrics == calculate_cost("openai", "gpt-4o-mini", call.token_usage, at=call.started_at)


def test_log_llm_usage_without_latency_has_no_performance_section(sink):
    log_llm_usage("openai", "gpt-4o-mini", input_tokens=1, output_tokens=1, total_tokens=2)
    call = sink.one()
    assert call.performance_metrics is None
    assert call.token_usage.total_tokens == 2


def test_log_llm_usage_with_an_error(sink):
    log_llm_usage("openai", "gpt-4o", error="rate limited", latency_ms=5)
    log_llm_usage("openai", "gpt-4o", error=TimeoutError("t"))
    first, second = sink.records()
    assert (first.status, first.error.type) == ("error", "rate limited")
    assert (second.error.type, second.error.message) == ("TimeoutError", "t")


def test_usage_is_estimated_from_text_when_not_reported(sink):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a token?"}]
    answer = "A token is a piece of text a model reads or writes."
    log_llm_usage("ollama", "llama3.1", prompt=messages, completion=answer)
    call = sink.one()
    assert call.estimated is True
    assert call.token_usage.input_tokens == count_message_tokens(messages, "llama3.1")
    assert call.token_usage.output_tokens == count_tokens(answer, "llama3.1")


def test_reported_cost(sink):
    log_llm_usage("openrouter", "some/model", input_tokens=10, output_tokens=10, cost="0.0021")
    cost = sink.one().cost_metrics
    assert (cost.pricing_status, cost.total_cost) == (PricingStatus.PROVIDER_REPORTED, cost.provider_reported_cost)


def test_log_embedding_usage_counts_texts_when_tokens_are_missing(sink):
    texts = ["first document", "second, longer document about pricing"]
    log_embedding_usage("infinity", "bge-small", texts=texts, dimensions=384, latency_ms=30)
    log_embedding_usage("openai", "text-embedding-3-small", input_tokens=1000, text_count=4)
    estimated, reported = sink.records()
    assert estimated.operation == "embeddings" and estimated.estimated is True
    assert estimated.token_usage.input_tokens == count_tokens("\n".join(texts), "bge-small")
    assert estimated.metadata == {"embedding.text_count": 2, "embedding.dimensions": 384}
    assert reported.token_usage.input_tokens == 1000 and reported.estimated is None
    expected = calculate_cost("openai", "text-embedding-3-small", reported.token_usage, at=reported.started_at)
    assert reported.cost_metrics == expected and expected.total_cost is not None


def test_log_ocr_usage_records_units(sink):
    log_ocr_usage("azure", "prebuilt-read", pages=12, images=3, latency_ms=1500, document="invoice.pdf")
    call = sink.one()
    assert call.operation == "ocr" and call.provider == "azure.ai.openai"
    assert (call.units.pages, call.units.images) == (12, 3)
    assert call.metadata == {"document": "invoice.pdf"}
    assert call.cost_metrics.pricing_status in (PricingStatus.UNPRICED, PricingStatus.PRICED, PricingStatus.OVERRIDE)


def test_bad_latency_is_refused(sink):
    with pytest.raises(Exception) as err:
        log_llm_usage("openai", "gpt-4o", latency_ms=-3)
    assert getattr(err.value, "field", None) == "latency_ms"


def test_set_llm_attributes_and_set_token_usage_apply_to_the_current_call(sink):
    with track_llm_call(provider="openai", model="gpt-4o") as tracker:
        tracker.set_tokens(input_tokens=10, output_tokens=5)
        set_token_usage(output_tokens=7, cached_tokens=4)
        set_llm_attributes(provider="azure", provider_request_id="req-1", deployment="eu")
    call = sink.one()
    usage = call.token_usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (10, 7, 4)
    assert call.provider == "azure.ai.openai"
    assert call.response_metadata.request_id == "req-1"
    assert call.metadata == {"deployment": "eu"}


def test_outside_a_call_they_record_a_call_of_their_own(sink):
    made = set_llm_attributes(provider="openai", model="gpt-4o", input_tokens=150, output_tokens=200)
    made_too = set_token_usage(input_tokens=3, output_tokens=4, provider="anthropic", model="claude-3-5-haiku-latest")
    first, second = sink.records()
    assert made == first and made_too == second
    assert (first.provider, first.token_usage.total_tokens) == ("openai", 350)
    assert (second.provider, second.token_usage.total_tokens) == ("anthropic", 7)
