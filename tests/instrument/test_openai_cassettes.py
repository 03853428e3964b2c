"""Recorded OpenAI exchanges replayed through the real openai SDK (httpx2.MockTransport) with
`instrument()` on: every field the record carries is checked against the recording."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import openai
import pytest
from _replay import Exchange, Replay, async_client, client, load

import tokentrail
from tokentrail.instrument import instrument

# Go-duration reset headers of these recordings, converted by hand (seconds)
RESETS = {
    "0s": 0.0, "1ms": 0.001, "2ms": 0.002, "6ms": 0.006, "11ms": 0.011, "12ms": 0.012, "15ms": 0.015,
    "16ms": 0.016, "120ms": 0.12, "132ms": 0.132, "8.64s": 8.64, "12.967s": 12.967, "16.601s": 16.601,
    "22.564s": 22.564, "30.375s": 30.375, "34.066s": 34.066, "37.973s": 37.973, "1m6.779s": 66.779,
}  # fmt: skip
_PARAMS = {"temperature", "top_p", "seed", "n", "service_tier", "frequency_penalty", "presence_penalty"}


def check_headers(call: tokentrail.LLMCall, ex: Exchange) -> None:
    assert call.response_metadata.request_id == ex.header("x-request-id")
    limits = call.rate_limit_info
    if ex.header("x-ratelimit-limit-requests") is None:
        assert limits is None
        return
    assert limits.requests_limit == int(ex.header("x-ratelimit-limit-requests"))
    assert limits.requests_remaining == int(ex.header("x-ratelimit-remaining-requests"))
    assert limits.tokens_limit == int(ex.header("x-ratelimit-limit-tokens"))
    assert limits.tokens_remaining == int(ex.header("x-ratelimit-remaining-tokens"))
    for field, header in (
        ("requests_reset_at", "x-ratelimit-reset-requests"),
        ("tokens_reset_at", "x-ratelimit-reset-tokens"),
    ):
        delta = timedelta(seconds=RESETS[ex.header(header)])
        reset = getattr(limits, field)
        assert reset.tzinfo is not None
        assert call.started_at + delta <= reset <= call.completed_at + delta + timedelta(seconds=1)


def check_request(call: tokentrail.LLMCall, request: dict) -> None:
    params = call.request_parameters
    for name in _PARAMS & request.keys():
        assert getattr(params, name) == request[name], name
    if "max_tokens" in request or "max_output_tokens" in request:
        assert params.max_tokens == request.get("max_tokens", request.get("max_output_tokens"))
    assert call.request_model == request["model"]
    assert call.provider_specific["server_address"] == "api.openai.com"
    assert call.provider_specific["server_port"] == 443


def check_priced(call: tokentrail.LLMCall, api: str, body) -> None:
    usage = tokentrail.extract_usage(body, "openai", api)
    assert usage is not None and call.token_usage == usage
    expected = tokentrail.calculate_cost("openai", call.provider_model, usage, at=call.started_at)
    assert call.cost_metrics.total_cost == expected.total_cost
    assert call.cost_metrics.pricing_status == expected.pricing_status
    perf = call.performance_metrics
    assert perf.total_duration_ms > 0
    if usage.output_tokens:
        assert perf.tokens_per_second > 0


NON_STREAMED_CHAT = [
    "test_chat_completion_metrics",
    "test_chat_completion_with_content",
    "test_chat_completion_extra_params",
    "test_chat_completion_multiple_choices",
    "test_chat_completion_tool_calls_with_content",
]


@pytest.mark.parametrize("name", NON_STREAMED_CHAT)
def test_chat_completions(name, calls):
    instrument()
    exchanges = load(name)
    replay = Replay(exchanges)
    sdk = client(replay)
    results = [sdk.chat.completions.create(**ex.request) for ex in exchanges]
    assert len(calls) == len(exchanges)
    for call, ex, result in zip(calls, exchanges, results, strict=True):
        body = ex.json
        assert isinstance(result, openai.types.chat.ChatCompletion) and result.id == body["id"]
        assert call.operation == "chat" and call.provider == "openai" and call.status == "ok"
        assert call.provider_model == body["model"]
        meta = call.response_metadata
        assert meta.response_id == body["id"]
        assert meta.finish_reason == ",".join(c["finish_reason"] for c in body["choices"])
        assert meta.system_fingerprint == body.get("system_fingerprint")
        assert meta.service_tier == body.get("service_tier")
        assert call.streaming is False and call.attempt == 1
        assert call.content is None  # content capture is off by default
        check_request(call, ex.request)
        check_headers(call, ex)
        check_priced(call, "chat.completions", body)


def test_multiple_choices_join_finish_reasons(calls):
    instrument()
    ex = load("test_chat_completion_multiple_choices")[0]
    client(Replay([ex])).chat.completions.create(**ex.request)
    assert calls[0].request_parameters.n == 2
    assert calls[0].response_metadata.finish_reason == "stop,stop"


def test_content_is_captured_only_when_enabled(calls):
    instrument()
    tokentrail.configure(sinks=["memory"], capture_content=True)
    exchanges = load("test_chat_completion_tool_calls_with_content")
    sdk = client(Replay(exchanges))
    for ex in exchanges:
        sdk.chat.completions.create(**ex.request)
    first, second = calls
    assert first.content.messages == exchanges[0].request["messages"]
    tool_calls = exchanges[0].json["choices"][0]["message"]["tool_calls"]
    assert first.content.result["tool_calls"] == [
        {"id": t["id"], "name": t["function"]["name"], "arguments": t["function"]["arguments"]} for t in tool_calls
    ]
    assert second.content.result == exchanges[1].json["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    "name", ["test_chat_completion_streaming", "test_chat_completion_multiple_tools_streaming_with_content"]
)
def test_streamed_chat_with_usage(name, calls):
    instrument()
    ex = load(name)[0]
    events = ex.events
    stream = client(Replay([ex])).chat.completions.create(**ex.request)
    chunks = list(stream)
    assert [c.id for c in chunks] == [e["id"] for e in events]  # nothing hidden: the caller asked for usage
    (call,) = calls
    assert call.streaming is True and call.request_parameters.stream is True
    assert call.provider_model == events[0]["model"]
    assert call.response_metadata.response_id == events[0]["id"]
    reasons = [c["finish_reason"] for e in events for c in e["choices"] if c.get("finish_reason")]
    assert call.response_metadata.finish_reason == ",".join(reasons)
    assert call.estimated is None and "partial" not in call.provider_specific
    ttft = call.performance_metrics.time_to_first_token_ms
    assert 0 <= ttft <= call.performance_metrics.total_duration_ms
    check_request(call, ex.request)
    check_headers(call, ex)
    check_priced(call, "chat.completions", events)


def test_streamed_chat_without_usage_is_estimated(calls):
    instrument(inject_stream_usage=False)
    ex = load("test_chat_completion_streaming_not_complete")[0]
    replay = Replay([ex])
    text = "".join(c.choices[0].delta.content or "" for c in client(replay).chat.completions.create(**ex.request))
    assert "stream_options" not in replay.sent_json()
    (call,) = calls
    expected = tokentrail.tracking.estimate_usage(messages=ex.request["messages"], output_text=text, model="gpt-4")
    assert call.estimated is True and call.token_usage == expected
    assert call.cost_metrics.pricing_status == "estimated" and call.cost_metrics.total_cost > 0
    check_headers(call, ex)


def test_async_chat_and_stream(calls):
    instrument()

    async def main():
        plain = load("test_async_chat_completion_metrics")[0]
        streamed = load("test_async_chat_completion_streaming")[0]
        sdk = async_client(Replay([plain, streamed]))
        result = await sdk.chat.completions.create(**plain.request)
        stream = await sdk.chat.completions.create(**streamed.request)
        assert isinstance(stream, openai.AsyncStream)
        chunks = [c async for c in stream]
        return plain, streamed, result, chunks

    plain, streamed, result, chunks = asyncio.run(main())
    assert result.id == plain.json["id"] and len(chunks) == len(streamed.events)
    first, second = calls
    assert first.response_metadata.response_id == plain.json["id"] and first.streaming is False
    check_headers(first, plain)
    check_priced(first, "chat.completions", plain.json)
    assert second.streaming is True and second.performance_metrics.time_to_first_token_ms is not None
    check_headers(second, streamed)
    check_priced(second, "chat.completions", streamed.events)


@pytest.mark.parametrize(
    ("name", "call_api"),
    [
        ("test_chat_completion_404", lambda sdk, req: sdk.chat.completions.create(**req)),
        ("test_embeddings_model_not_found", lambda sdk, req: sdk.embeddings.create(**req)),
        ("test_responses_create_api_error[content_mode0]", lambda sdk, req: sdk.responses.create(**req)),
    ],
)
def test_errors_keep_the_sdk_exception(name, call_api, calls):
    instrument()
    ex = load(name)[0]
    with pytest.raises(openai.APIStatusError) as raised:
        call_api(client(Replay([ex])), ex.request)
    assert raised.value.status_code == ex.status  # the SDK's own exception, untouched
    (call,) = calls
    assert call.status == "error"
    assert call.error.type == type(raised.value).__qualname__
    assert call.error.http_status == ex.status
    assert ex.json["error"]["message"] in call.error.message
    assert call.request_model == ex.request["model"] and call.provider_model is None
    assert call.response_metadata.request_id == ex.header("x-request-id")
    assert call.attempt == 1 and call.token_usage is None
    assert call.cost_metrics.total_cost is None


@pytest.mark.parametrize("name", ["test_embeddings_token_metrics", "test_embeddings_with_dimensions"])
def test_embeddings(name, calls):
    instrument()
    ex = load(name)[0]
    result = client(Replay([ex])).embeddings.create(**ex.request)
    assert len(result.data[0].embedding) == len(ex.json["data"][0]["embedding"])
    (call,) = calls
    assert call.operation == "embeddings" and call.streaming is None
    assert call.provider_model == ex.json["model"]
    assert call.response_metadata.response_id is None and call.response_metadata.finish_reason is None
    if "dimensions" in ex.request:
        assert call.provider_specific["request_params"] == {"dimensions": ex.request["dimensions"]}
    check_request(call, ex.request)
    check_headers(call, ex)
    check_priced(call, "embeddings", ex.json)
    assert call.token_usage.output_tokens == 0


RESPONSES = [
    "test_responses_create_basic[content_mode0]",
    "test_responses_create_aggregates_cache_tokens[content_mode0]",
    "test_responses_create_reports_reasoning_tokens[content_mode0]",
]


@pytest.mark.parametrize("name", RESPONSES)
def test_responses(name, calls):
    instrument()
    ex = load(name)[0]
    result = client(Replay([ex])).responses.create(**ex.request)
    body = ex.json
    assert result.id == body["id"]
    (call,) = calls
    assert call.operation == "chat" and call.provider_model == body["model"]
    meta = call.response_metadata
    assert meta.response_id == body["id"]
    assert meta.finish_reason == ((body.get("incomplete_details") or {}).get("reason") or body["status"])
    assert meta.service_tier == body.get("service_tier")
    effort = (ex.request.get("reasoning") or {}).get("effort")
    if effort:
        assert call.provider_specific["request_params"]["reasoning_effort"] == effort
    check_request(call, ex.request)
    check_headers(call, ex)
    check_priced(call, "responses", body)


@pytest.mark.parametrize(
    "name",
    [
        "test_responses_create_streaming[content_mode0]",
        "test_responses_create_streaming_aggregates_cache_tokens[content_mode0]",
    ],
)
def test_streamed_responses(name, calls):
    instrument()
    ex = load(name)[0]
    events = list(client(Replay([ex])).responses.create(**ex.request))
    assert [e.type for e in events] == [e["type"] for e in ex.events]
    final = next(e for e in ex.events if e["type"] == "response.completed")["response"]
    (call,) = calls
    assert call.streaming is True
    assert call.response_metadata.response_id == final["id"]
    assert call.response_metadata.finish_reason == final["status"]
    assert call.provider_model == final["model"]
    assert call.performance_metrics.time_to_first_token_ms is not None
    check_request(call, ex.request)
    check_headers(call, ex)
    check_priced(call, "responses", ex.events)
