"""The Anthropic SDK against the mock provider over loopback, with `instrument()`: sync,
async, streams and the `stream()` helper, prompt caching on a repeated long prompt,
thinking, streams left early, errors and retries, raw responses, `wrap_anthropic`."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anthropic
import pytest

import tokentrail
from tokentrail.instrument import instrument, instrumented, uninstrument, wrap_anthropic
from tokentrail.mockprovider import MockProvider

MODEL = "claude-sonnet-4-6"
HELLO = [{"role": "user", "content": "Say hello."}]
LONG_SYSTEM = "You are a meticulous assistant. " * 200  # ~1600 tokens: above the 1024-token cache minimum


@pytest.fixture
def mock():
    with MockProvider(port=0, retry_after_ms=10) as server:
        yield server


def sync_client(mock: MockProvider, **kwargs: Any) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(api_key="test", base_url=mock.url, **kwargs)


def check_billed(call: tokentrail.LLMCall, mock: MockProvider, index: int = -1) -> None:
    """The record's usage is what the mock billed (its inclusive convention is tokentrail's)."""
    billed = mock.calls[index]
    usage = call.token_usage
    assert usage.input_tokens == billed.usage.input_tokens
    assert usage.output_tokens == billed.usage.output_tokens
    assert usage.cache_read_tokens == billed.usage.cache_read_tokens
    assert usage.cache_write_tokens == billed.usage.cache_write_tokens
    assert call.response_metadata.request_id == billed.request_id
    assert call.cost_metrics.pricing_status == "priced" and call.cost_metrics.total_cost > 0


def test_create_records_usage_limits_and_cost(mock, calls):
    instrument("anthropic")
    message = sync_client(mock).messages.create(
        model=MODEL,
        max_tokens=300,
        messages=HELLO,
        stop_sequences=["END"],
        extra_body={"temperature": 0.2, "top_k": 5},  # anthropic 2.x no longer declares them
    )
    (call,) = calls
    check_billed(call, mock)
    assert call.response_metadata.response_id == message.id
    assert call.response_metadata.finish_reason == message.stop_reason == "end_turn"
    params = call.request_parameters
    assert (params.max_tokens, params.temperature, params.top_k, params.stop_sequences) == (300, 0.2, 5, ["END"])
    limits = call.rate_limit_info
    assert limits.requests_limit == 500 and 0 <= limits.requests_remaining < 500
    assert limits.tokens_reset_at is not None and limits.tokens_reset_at.tzinfo is not None
    assert call.attempt == 1 and call.streaming is False


def test_repeated_long_prompt_hits_the_cache(mock, calls):
    instrument("anthropic")
    client = sync_client(mock)
    for _ in range(2):
        client.messages.create(model=MODEL, max_tokens=50, system=LONG_SYSTEM, messages=HELLO)
    first, second = calls
    check_billed(first, mock, 0)
    check_billed(second, mock, 1)
    assert first.token_usage.cache_write_tokens > 0 and first.token_usage.cache_read_tokens == 0
    assert second.token_usage.cache_read_tokens == first.token_usage.cache_write_tokens
    assert second.token_usage.details is None  # only the 5-minute TTL: no split detail needed
    assert second.cost_metrics.cache_read_cost > 0
    assert second.cost_metrics.input_cost + second.cost_metrics.cache_read_cost < first.cost_metrics.input_cost + (
        first.cost_metrics.cache_write_cost
    )


def test_one_hour_cache_writes_are_kept_apart(mock, calls):
    instrument("anthropic")
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    sync_client(mock).messages.create(model=MODEL, max_tokens=50, system=system, messages=HELLO)
    (call,) = calls
    written = mock.calls[0].usage.cache_write_1h_tokens
    assert written > 0
    assert call.token_usage.cache_write_tokens == written
    assert call.token_usage.details == {"cache_write_1h_tokens": written}


def test_thinking_is_reasoning(mock, calls):
    instrument("anthropic")
    sync_client(mock).messages.create(
        model=MODEL, max_tokens=2000, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 300}
    )
    (call,) = calls
    check_billed(call, mock)
    assert call.token_usage.reasoning_tokens == mock.calls[0].usage.reasoning_tokens > 0
    assert call.provider_specific["request_params"] == {"thinking": "enabled", "thinking_budget_tokens": 300}


def test_stream_create(mock, calls):
    instrument("anthropic")
    events = list(sync_client(mock).messages.create(model=MODEL, max_tokens=200, messages=HELLO, stream=True))
    (call,) = calls
    check_billed(call, mock)
    assert call.streaming is True and call.request_parameters.stream is True
    assert call.response_metadata.response_id == events[0].message.id
    assert call.response_metadata.finish_reason == "end_turn"
    assert 0 < call.performance_metrics.time_to_first_token_ms <= call.performance_metrics.total_duration_ms


def test_stream_helper_text_and_final_message(mock, calls):
    instrument("anthropic")
    with sync_client(mock).messages.stream(
        model=MODEL, max_tokens=1000, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 64}
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[-1].text
    (call,) = calls
    check_billed(call, mock)
    assert call.token_usage.reasoning_tokens == mock.calls[0].usage.reasoning_tokens
    assert call.response_metadata.response_id == final.id
    assert "partial" not in call.provider_specific


def test_stream_left_early_is_partial_with_unknown_output(mock, calls):
    instrument("anthropic")
    stream = sync_client(mock).messages.create(model=MODEL, max_tokens=200, messages=HELLO, stream=True)
    for index, _ in enumerate(stream):
        if index == 1:
            break
    assert len(calls) == 1  # recorded when the loop was left
    stream.close()
    del stream
    gc.collect()
    (call,) = calls
    assert call.status == "ok" and call.provider_specific["partial"] is True
    assert call.token_usage.input_tokens == mock.calls[0].usage.input_tokens  # message_start counts it
    assert call.token_usage.output_tokens is None  # its output_tokens is a placeholder
    assert call.response_metadata.finish_reason is None


def test_stream_helper_closed_unread_is_partial(mock, calls):
    instrument("anthropic")
    with sync_client(mock).messages.stream(model=MODEL, max_tokens=200, messages=HELLO):
        pass
    (call,) = calls
    assert call.provider_specific["partial"] is True
    assert call.response_metadata.request_id == mock.calls[0].request_id


def test_async_create_stream_and_helper(mock, calls):
    instrument("anthropic")

    async def main() -> str:
        async with anthropic.AsyncAnthropic(api_key="k", base_url=mock.url, max_retries=0) as client:
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
            async for _ in await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True):
                pass
            async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
                return "".join([t async for t in stream.text_stream])

    assert asyncio.run(main())
    assert [c.streaming for c in calls] == [False, True, True]
    for index, call in enumerate(calls):
        check_billed(call, mock, index)
        assert call.attempt == 1
    assert calls[2].performance_metrics.time_to_first_token_ms is not None


def test_rate_limited_call_is_retried_and_counted(mock, calls):
    instrument("anthropic")
    mock.fail_next("rate_limit", count=2, provider="anthropic")
    sync_client(mock, max_retries=3).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    (call,) = calls
    assert call.status == "ok" and call.attempt == 3
    check_billed(call, mock)


@pytest.mark.parametrize(
    ("kind", "status", "exc_type", "error_type"),
    [
        ("overloaded", 529, anthropic.OverloadedError, "overloaded_error"),
        ("rate_limit", 429, anthropic.RateLimitError, "rate_limit_error"),
    ],
)
def test_error_after_retries(kind, status, exc_type, error_type, mock, calls):
    instrument("anthropic")
    mock.fail_next(kind, count=3, provider="anthropic")
    with pytest.raises(exc_type) as caught:
        sync_client(mock, max_retries=2).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    (call,) = calls
    assert call.status == "error"
    assert call.error.type == type(caught.value).__qualname__
    assert call.error.http_status == status == caught.value.status_code
    assert call.provider_specific["error_type"] == error_type
    assert call.attempt == 3
    assert call.response_metadata.request_id == caught.value.request_id
    if status == 429:
        assert call.rate_limit_info.retry_after_ms == pytest.approx(10.0)
    assert call.token_usage is None


def test_raw_and_streaming_responses(mock, calls):
    instrument("anthropic")
    client = sync_client(mock)
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert len(calls) == 1  # the body was already read: recorded at once
    assert raw.parse().id == calls[0].response_metadata.response_id
    with client.messages.with_streaming_response.create(model=MODEL, max_tokens=50, messages=HELLO) as response:
        message = response.parse()
    assert calls[1].response_metadata.response_id == message.id
    raw_stream = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=HELLO, stream=True)
    assert len(list(raw_stream.parse())) > 3
    for index, call in enumerate(calls):
        check_billed(call, mock, index)
    assert [c.streaming for c in calls] == [False, False, True]


def test_structured_output_schema_is_recorded(mock, calls):
    instrument("anthropic")
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    sync_client(mock).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=HELLO,
        output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
    )
    (call,) = calls
    assert call.response_schema == schema
    assert call.provider_specific["request_params"] == {"effort": "low"}


def test_content_capture(mock, calls):
    tokentrail.configure(sinks=["memory"], capture_content=True)
    instrument("anthropic")
    message = sync_client(mock).messages.create(model=MODEL, max_tokens=50, system="Be brief.", messages=HELLO)
    with sync_client(mock).messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as stream:
        streamed = stream.get_final_text()
    first, second = calls
    assert first.content.messages == {"system": "Be brief.", "messages": HELLO}
    assert first.content.result == message.content[0].text
    assert second.content.messages == HELLO and second.content.result == streamed


def test_wrap_one_client_only(mock, calls):
    wrapped = wrap_anthropic(sync_client(mock), provider="gcp.vertex_ai")
    other = sync_client(mock)
    other.messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert calls == [] and instrumented() == []
    wrapped.messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    with wrapped.messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as stream:
        stream.until_done()
    wrapped.with_options(timeout=30).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert len(calls) == 3
    assert {c.provider for c in calls} == {"gcp.vertex_ai"}  # forced for this client
    assert calls[0].response_metadata.request_id == mock.calls[1].request_id
    assert calls[1].streaming is True and calls[2].response_metadata.request_id == mock.calls[3].request_id


def test_uninstrument_stops_recording(mock, calls):
    assert "anthropic" in instrument("claude")
    uninstrument("anthropic")
    sync_client(mock).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    with sync_client(mock).messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as stream:
        stream.until_done()
    assert calls == []
    assert not hasattr(anthropic.resources.messages.Messages.create, "__tokentrail_original__")


def test_beta_messages_are_recorded_once(mock, calls):
    instrument("anthropic")
    client = sync_client(mock)
    message = client.beta.messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    with client.beta.messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as stream:
        streamed = stream.get_final_message()
    first, second = calls
    assert first.response_metadata.response_id == message.id
    assert second.response_metadata.response_id == streamed.id and second.streaming is True
    check_billed(first, mock, 0)
    check_billed(second, mock, 1)


def test_instrument_without_names_covers_every_installed_sdk(calls):
    assert instrument() == ["anthropic", "bedrock", "gemini", "openai"]
    assert instrumented() == ["anthropic", "bedrock", "gemini", "openai"]
    assert instrument("anthropic", "claude") == ["anthropic"]  # two names of one SDK
