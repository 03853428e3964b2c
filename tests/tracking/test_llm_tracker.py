from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from tokentrail.core import LLMCall, PricingStatus, TokenUsage, ValidationError
from tokentrail.core.attribution import attribution
from tokentrail.pricing import calculate_cost
from tokentrail.tracking import guard, runtime, stats, track_llm_call


def test_full_call_record(sink, clock):
    with track_llm_call(provider="OpenAI", model="gpt-4o-mini", experiment="exp-1") as tracker:
        tracker.set_request_params(
            temperature=0.2, top_p=0.9, max_completion_tokens=300, stop="END", seed=7, logprobs=True
        )
        clock.advance(ms=250)
        tracker.set_time_to_first_token()
        clock.advance(ms=750)
        tracker.set_tokens(input_tokens=1200, output_tokens=300, cached_tokens=1000, reasoning_tokens=100)
        tracker.set_request_id("chatcmpl-123", client_request_id="mine-1")
        tracker.set_response_model("gpt-4o-mini-2024-07-18")
        tracker.set_streaming(True)
        tracker.set_attempt(2)
        tracker.set_finish_reason("stop")
        tracker.add_metadata(prompt_version="v2")
    call = sink.one()
    assert call.operation == "chat"
    assert call.provider == "openai"
    assert (call.request_model, call.provider_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert call.status == "ok" and call.error is None
    assert call.started_at == clock.now() - timedelta(seconds=1)
    assert call.completed_at == clock.now()
    usage = call.token_usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (1200, 300, 1500)
    assert (usage.cache_read_tokens, usage.reasoning_tokens, usage.cache_write_tokens) == (1000, 100, None)
    perf = call.performance_metrics
    assert perf.total_duration_ms == pytest.approx(1000)
    assert perf.time_to_first_token_ms == pytest.approx(250)
    assert perf.tokens_per_second == pytest.approx(300 / 0.75)  # generation time after the first token
    params = call.request_parameters
    assert (params.temperature, params.top_p, params.max_tokens, params.stop_sequences, params.seed) == (
        0.2,
        0.9,
        300,
        ["END"],
        7,
    )
    assert call.provider_specific == {"request_params": {"logprobs": True}}
    meta = call.response_metadata
    assert (meta.request_id, meta.client_request_id, meta.finish_reason) == ("chatcmpl-123", "mine-1", "stop")
    assert (call.streaming, call.attempt, call.estimated) == (True, 2, None)
    assert call.metadata == {"experiment": "exp-1", "prompt_version": "v2"}
    # priced at started_at with the response's model, exactly as the price engine prices it
    expected = calculate_cost("openai", "gpt-4o-mini-2024-07-18", usage, at=call.started_at)
    assert call.cost_metrics == expected
    assert call.cost_metrics.total_cost is not None and call.cost_metrics.total_cost > 0
    assert call.trace_id and call.parent_id is None
    # the record survives its own wire format
    assert LLMCall.from_dict(call.to_dict()) == call


def test_cached_tokens_is_the_cache_read_count_and_input_is_inclusive(sink):
    with track_llm_call(provider="openai", model="gpt-4o") as tracker:
        tracker.set_tokens(input_tokens=100, output_tokens=10, cached_tokens=40, cache_read_tokens=40)
    usage = sink.one().token_usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.uncached_input_tokens) == (100, 40, 60)


def test_cached_and_cache_read_disagreeing_is_an_error(sink):
    with pytest.raises(ValidationError) as err, track_llm_call(provider="openai", model="gpt-4o") as tracker:
        tracker.set_tokens(input_tokens=100, output_tokens=10, cached_tokens=40, cache_read_tokens=30)
    assert err.value.field == "cached_tokens"


def test_exclusive_anthropic_counts_are_refused_with_a_hint(sink):
    with pytest.raises(ValidationError) as err, track_llm_call(provider="anthropic", model="claude-3-5-haiku") as t:
        t.set_tokens(input_tokens=10, output_tokens=5, cache_read_tokens=500)
    assert err.value.field == "cache_read_tokens"
    assert "cache_read_input_tokens" in str(err.value)


def test_outside_tests_bad_counts_are_swallowed_and_the_call_still_recorded(sink):
    guard.set_reraise(False)
    before = stats().internal_errors
    with track_llm_call(provider="openai", model="gpt-4o") as tracker:
        tracker.set_tokens(input_tokens=-1, output_tokens=5)
    call = sink.one()
    assert call.token_usage is None
    assert call.cost_metrics.pricing_status == PricingStatus.UNPRICED
    assert stats().internal_errors == before + 1


def test_exception_is_recorded_and_reraised_untouched(sink):
    class RateLimitError(Exception):
        status_code = 429

    original = RateLimitError("slow down")
    with pytest.raises(RateLimitError) as raised, track_llm_call(provider="openai", model="gpt-4o"):
        raise original
    assert raised.value is original
    call = sink.one()
    assert call.status == "error"
    assert call.error.type.endswith("RateLimitError")
    assert (call.error.message, call.error.http_status) == ("slow down", 429)


def test_set_error_by_type_name(sink):
    with track_llm_call(provider="openai", model="gpt-4o") as tracker:
        tracker.set_error("content_filter", "blocked")
    call = sink.one()
    assert (call.status, call.error.type, call.error.message) == ("error", "content_filter", "blocked")


def test_async_with(sink, clock):
    async def main() -> None:
        async with track_llm_call(provider="claude", model="claude-3-5-haiku-latest") as tracker:
            await asyncio.sleep(0)
            clock.advance(ms=40)
            tracker.set_tokens(input_tokens=20, output_tokens=4)
        with pytest.raises(KeyError):
            async with track_llm_call(provider="anthropic", model="claude-3-5-haiku-latest"):
                raise KeyError("x")

    asyncio.run(main())
    ok, failed = sink.records()
    assert ok.provider == "anthropic"
    assert ok.performance_metrics.total_duration_ms == pytest.approx(40)
    assert failed.status == "error" and failed.error.type == "KeyError"


def test_provider_reported_cost_wins_and_computed_cost_is_kept(sink):
    with track_llm_call(provider="openai", model="gpt-4o-mini") as tracker:
        tracker.set_tokens(input_tokens=1000, output_tokens=100)
        tracker.set_cost("0.5")
    call = sink.one()
    computed = calculate_cost("openai", "gpt-4o-mini", call.token_usage, at=call.started_at)
    cost = call.cost_metrics
    assert cost.pricing_status == PricingStatus.PROVIDER_REPORTED
    assert cost.total_cost == Decimal("0.5") == cost.provider_reported_cost
    assert cost.computed_cost == computed.total_cost


def test_unknown_model_is_unpriced_not_zero(sink):
    with track_llm_call(provider="openai", model="no-such-model-xyz") as tracker:
        tracker.set_tokens(input_tokens=10, output_tokens=10)
    cost = sink.one().cost_metrics
    assert cost.pricing_status == PricingStatus.UNPRICED
    assert cost.total_cost is None


def test_no_usage_is_unpriced_with_a_reason(sink):
    with track_llm_call(provider="openai", model="gpt-4o"):
        pass
    cost = sink.one().cost_metrics
    assert (cost.pricing_status, cost.total_cost, cost.reason) == (PricingStatus.UNPRICED, None, "no usage reported")


def test_estimated_usage_is_flagged(sink):
    with track_llm_call(provider="openai", model="gpt-4o-mini") as tracker:
        tracker.set_usage(TokenUsage.build(input_tokens=50, output_tokens=20), estimated=True)
    call = sink.one()
    assert call.estimated is True
    assert call.cost_metrics.pricing_status == PricingStatus.ESTIMATED
    priced = calculate_cost("openai", "gpt-4o-mini", call.token_usage, at=call.started_at)
    assert call.cost_metrics.total_cost == priced.total_cost


def test_response_service_tier_selects_the_price(sink):
    usage = TokenUsage.build(input_tokens=10_000, output_tokens=1_000)
    with track_llm_call(provider="openai", model="gpt-4o-mini") as tracker:
        tracker.set_usage(usage)
        tracker.set_request_params(service_tier="auto")
        tracker.set_response_metadata(service_tier="flex", system_fingerprint="fp_1", response_id="resp_1")
    call = sink.one()
    assert call.cost_metrics == calculate_cost("openai", "gpt-4o-mini", usage, at=call.started_at, service_tier="flex")
    assert call.response_metadata.system_fingerprint == "fp_1"
    assert call.request_parameters.service_tier == "auto"


def test_attribution_and_settings_fill_the_record(sink):
    runtime.configure(sinks=[sink], service_name="checkout-api", environment="staging", project="shop")
    with (
        attribution(user_id="u1", tenant_id="acme", plan="pro"),
        attribution(feature="summary", environment="prod"),
        track_llm_call(provider="openai", model="gpt-4o") as tracker,
    ):
        tracker.add_metadata(plan="enterprise")
    call = sink.one()
    attr = call.attribution
    assert (attr.user_id, attr.tenant_id, attr.feature) == ("u1", "acme", "summary")
    assert (attr.service_name, attr.environment, attr.project) == ("checkout-api", "prod", "shop")
    assert call.metadata == {"plan": "enterprise"}  # explicit metadata beats a context tag


def test_content_is_kept_only_when_capture_is_on(sink):
    messages = [{"role": "user", "content": "hi"}]
    with track_llm_call(provider="openai", model="gpt-4o") as tracker:
        tracker.set_content(messages, "hello")
    assert sink.one().content is None
    runtime.configure(sinks=[sink], capture_content=True)
    sink.clear()
    with track_llm_call(provider="openai", model="gpt-4o") as tracker:
        tracker.set_content(messages, "hello")
    content = sink.one().content
    assert (content.messages, content.result) == (messages, "hello")


def test_units_rate_limits_schema_cache_hit(sink):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    with track_llm_call(provider="mistral", model="mistral-ocr-latest", operation="ocr") as tracker:
        tracker.set_units(pages=3)
        tracker.set_units(images=2)
        tracker.set_rate_limits(requests_limit=500, requests_remaining=499, tokens_reset_at="2025-06-02T09:31:00Z")
        tracker.set_response_schema(schema)
        tracker.set_cache_hit()
    call = sink.one()
    assert call.operation == "ocr" and call.provider == "mistral_ai"
    assert (call.units.pages, call.units.images) == (3, 2)
    assert (call.rate_limit_info.requests_limit, call.rate_limit_info.requests_remaining) == (500, 499)
    assert call.rate_limit_info.tokens_reset_at.isoformat() == "2025-06-02T09:31:00+00:00"
    assert call.response_schema == schema
    assert call.cache_hit is True


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda t: t.set_attempt(0), "attempt"),
        (lambda t: t.set_request_params(temperature="hot"), "request_parameters.temperature"),
        (lambda t: t.set_cost(-1), "cost"),
        (lambda t: t.set_time_to_first_token(-5), "time_to_first_token_ms"),
        (lambda t: t.set_response_metadata(colour="red"), "response_metadata.colour"),
        (lambda t: t.set_units(pages=-1), "units.pages"),
    ],
)
def test_bad_values_name_their_field(sink, call, field):
    with pytest.raises(ValidationError) as err, track_llm_call(provider="openai", model="gpt-4o") as tracker:
        call(tracker)
    assert err.value.field == field


def test_bad_operation_name(sink):
    with pytest.raises(ValidationError) as err:
        track_llm_call(provider="openai", model="gpt-4o", operation="chatting")
    assert err.value.field == "operation"


def test_records_made_in_threads_with_a_copied_context_keep_attribution(sink):
    import contextvars
    import threading

    def work() -> None:
        with track_llm_call(provider="openai", model="gpt-4o") as tracker:
            tracker.set_tokens(input_tokens=1, output_tokens=1)

    with attribution(user_id="threaded"):
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(work,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    calls = sink.records()
    assert [c.attribution.user_id for c in calls] == ["threaded"] * 3


def test_explicit_start_and_finish_for_streams(sink, clock):
    tracker = track_llm_call(provider="openai", model="gpt-4o-mini").start(push_span=False)
    with track_llm_call(provider="openai", model="gpt-4o-mini"):
        pass  # not parented to the open stream
    clock.advance(ms=30)
    tracker.set_time_to_first_token()
    clock.advance(ms=70)
    tracker.set_usage(TokenUsage.build(input_tokens=10, output_tokens=7))
    record = tracker.finish()
    assert tracker.finished
    assert tracker.finish() is None  # emitted once
    other, stream = sink.records()
    assert other.parent_id is None and other.trace_id != stream.trace_id
    assert stream == record
    assert stream.performance_metrics.time_to_first_token_ms == pytest.approx(30)
    assert stream.performance_metrics.total_duration_ms == pytest.approx(100)


def test_finish_with_an_exception(sink):
    tracker = track_llm_call(provider="openai", model="gpt-4o").start()
    tracker.finish(BrokenPipeError("stream cut"))
    call = sink.one()
    assert (call.status, call.error.type, call.error.message) == ("error", "BrokenPipeError", "stream cut")
