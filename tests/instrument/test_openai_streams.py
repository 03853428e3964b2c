"""Streams through the real openai SDK: usage injection, early exit, failures, Azure's empty
first chunk, the `.stream()` helper, manual `next()`, context managers, async."""

from __future__ import annotations

import asyncio
import gc
import json

import httpx2
import openai
import pytest
from _replay import Exchange, Replay, async_client, client, load, sse

import tokentrail
from tokentrail.instrument import instrument
from tokentrail.tracking.estimate import estimate_usage

STREAMED = load("test_chat_completion_streaming")[0]  # recorded with include_usage
REQUEST = {k: v for k, v in STREAMED.request.items() if k != "stream_options"}  # as a caller without it


def test_injected_usage_is_exact_and_hidden(calls):
    instrument(inject_stream_usage=True)
    replay = Replay([STREAMED])
    chunks = list(client(replay).chat.completions.create(**REQUEST))
    assert replay.sent_json()["stream_options"] == {"include_usage": True}
    events = STREAMED.events
    assert len(chunks) == len(events) - 1  # the usage-only chunk is not the caller's
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    (call,) = calls
    assert call.estimated is None
    assert call.token_usage == tokentrail.extract_usage(events, "openai", "chat.completions")


def test_injection_keeps_other_stream_options(calls):
    instrument(inject_stream_usage=True)
    replay = Replay([STREAMED])
    list(client(replay).chat.completions.create(**REQUEST, stream_options={"include_obfuscation": False}))
    assert replay.sent_json()["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_injection_from_settings(calls):
    tokentrail.configure(sinks=["memory"], inject_stream_usage=True)
    instrument()
    replay = Replay([STREAMED])
    list(client(replay).chat.completions.create(**REQUEST))
    assert replay.sent_json()["stream_options"] == {"include_usage": True}
    assert calls[0].estimated is None


def test_without_injection_usage_is_estimated(calls):
    instrument(inject_stream_usage=False)
    replay = Replay([STREAMED])  # the recorded body still ends with usage: reported usage wins
    list(client(replay).chat.completions.create(**REQUEST))
    assert "stream_options" not in replay.sent_json()
    assert calls[0].estimated is None  # usage arrived after all


def test_early_exit_is_recorded_partial_once(calls):
    instrument(inject_stream_usage=False)
    body = load("test_chat_completion_streaming_not_complete")[0]
    stream = client(Replay([body])).chat.completions.create(**REQUEST)
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if len(seen) == 2:
            break
    assert len(calls) == 1  # recorded when the loop was left, not when the stream is collected
    stream.close()
    assert len(calls) == 1
    call = calls[0]
    assert call.status == "ok" and call.provider_specific["partial"] is True
    text = "".join(c.choices[0].delta.content or "" for c in seen)
    assert call.estimated is True
    assert call.token_usage == estimate_usage(messages=REQUEST["messages"], output_text=text, model="gpt-4")
    assert call.response_metadata.finish_reason is None


def test_closing_an_unread_stream_records_partial(calls):
    instrument()
    with client(Replay([STREAMED])).chat.completions.create(**STREAMED.request) as stream:
        first = next(stream)
    assert first.id == STREAMED.events[0]["id"]
    (call,) = calls
    assert call.provider_specific["partial"] is True and call.status == "ok"
    assert call.token_usage is None  # the usage chunk never came: unknown, never zero
    assert call.cost_metrics.total_cost is None


def test_dropped_stream_is_recorded(calls):
    instrument()
    stream = client(Replay([STREAMED])).chat.completions.create(**STREAMED.request)
    next(stream)
    del stream
    gc.collect()
    assert len(calls) == 1 and calls[0].provider_specific["partial"] is True


def test_manual_next_until_exhausted(calls):
    instrument(inject_stream_usage=True)
    stream = client(Replay([STREAMED])).chat.completions.create(**REQUEST)
    got = []
    with pytest.raises(StopIteration):
        while True:
            got.append(next(stream))
    assert len(got) == len(STREAMED.events) - 1
    assert len(calls) == 1 and "partial" not in calls[0].provider_specific
    assert calls[0].token_usage.output_tokens == STREAMED.events[-1]["usage"]["completion_tokens"]


def test_proxy_behaves_like_the_sdk_stream(calls):
    instrument()
    stream = client(Replay([STREAMED])).chat.completions.create(**STREAMED.request)
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200 and stream.response.headers["x-request-id"]
    assert type(stream).__name__ == "Stream"
    assert len(list(stream)) == len(STREAMED.events)


class _FailingStream(httpx2.SyncByteStream):
    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    def __iter__(self):
        yield self.prefix
        raise httpx2.ReadError("connection reset mid-stream")


class _AsyncFailingStream(httpx2.AsyncByteStream):
    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    async def __aiter__(self):
        yield self.prefix
        raise httpx2.ReadError("connection reset mid-stream")


def _failing(request: httpx2.Request, *, asynchronous: bool = False) -> httpx2.Response:
    prefix = sse(STREAMED.events[:3], done=False).encode()
    stream = _AsyncFailingStream(prefix) if asynchronous else _FailingStream(prefix)
    return httpx2.Response(200, headers={"content-type": "text/event-stream", "x-request-id": "req_x"}, stream=stream)


def test_stream_failing_midway_records_the_error(calls):
    instrument(inject_stream_usage=False)
    stream = client(Replay([_failing])).chat.completions.create(**REQUEST)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 3
    (call,) = calls
    assert call.status == "error" and call.error.type == "APIConnectionError"
    assert call.response_metadata.request_id == "req_x"
    assert call.estimated is True and call.token_usage.output_tokens > 0
    assert "partial" not in call.provider_specific  # an error, not a caller leaving early


def _azure_stream() -> Exchange:
    """Azure OpenAI's stream shape (PROVIDERS.md A.4): an empty first chunk with only
    prompt_filter_results, then the model's chunks, then usage (include_usage)."""
    base = {"object": "chat.completion.chunk", "created": 1, "system_fingerprint": "fp_az"}
    model = {**base, "id": "chatcmpl-az", "model": "gpt-4o-2024-08-06"}
    usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    chunks = [
        {
            "id": "",
            "model": "",
            "created": 0,
            "object": "",
            "choices": [],
            "prompt_filter_results": [{"prompt_index": 0}],
        },
        {**model, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**model, "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]},
        {**model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**model, "choices": [], "usage": usage},
    ]
    headers = [
        ("content-type", "text/event-stream"),
        ("apim-request-id", "apim-42"),
        ("x-ratelimit-remaining-requests", "99"),
        ("x-ratelimit-remaining-tokens", "9990"),
    ]
    return Exchange(request={}, uri="", status=200, headers=headers, body=sse(chunks))


def _azure(replay: Replay, **kwargs) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint="https://contoso.openai.azure.com",
        http_client=httpx2.Client(transport=httpx2.MockTransport(replay)),
        max_retries=0,
        **kwargs,
    )


def test_azure_stream_deployment_and_first_empty_chunk(calls, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[[alias]]\nprovider = "azure"\nmodel = "my-gpt4o-deploy"\ntarget = "gpt-4o-mini"\n')
    tokentrail.configure(sinks=["memory"], prices=str(prices))
    instrument(inject_stream_usage=True)
    replay = Replay([_azure_stream()])
    messages = [{"role": "user", "content": "hi"}]
    chunks = list(_azure(replay).chat.completions.create(model="my-gpt4o-deploy", messages=messages, stream=True))
    assert replay.requests[0].url.path == "/openai/deployments/my-gpt4o-deploy/chat/completions"
    assert chunks[0].choices == [] and chunks[0].id == ""  # Azure's filter chunk reaches the caller
    assert len(chunks) == 4  # ... the injected usage chunk does not
    (call,) = calls
    assert call.provider == "azure.ai.openai"
    assert call.request_model == "my-gpt4o-deploy" and call.provider_model == "gpt-4o-2024-08-06"
    assert call.provider_specific["azure_deployment"] == "my-gpt4o-deploy"
    assert call.provider_specific["server_address"] == "contoso.openai.azure.com"
    assert call.response_metadata.response_id == "chatcmpl-az"
    assert call.response_metadata.request_id == "apim-42"
    assert call.rate_limit_info.requests_remaining == 99 and call.rate_limit_info.tokens_remaining == 9990
    assert call.rate_limit_info.requests_limit is None and call.rate_limit_info.tokens_reset_at is None
    # priced through the deployment map (alias -> gpt-4o-mini), not as the response's gpt-4o
    expected = tokentrail.calculate_cost("azure.ai.openai", "my-gpt4o-deploy", call.token_usage, at=call.started_at)
    assert call.cost_metrics.total_cost == expected.total_cost
    assert (
        call.cost_metrics.total_cost
        != tokentrail.calculate_cost(
            "azure.ai.openai", "gpt-4o-2024-08-06", call.token_usage, at=call.started_at
        ).total_cost
    )
    assert call.performance_metrics.time_to_first_token_ms is not None


def test_azure_unmapped_deployment_falls_back_to_the_response_model(calls):
    instrument(inject_stream_usage=True)
    replay = Replay([_azure_stream()])
    sdk = _azure(replay, azure_deployment="prod-chat")
    list(sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert replay.requests[0].url.path.startswith("/openai/deployments/prod-chat/")
    (call,) = calls
    assert call.request_model == "prod-chat"
    expected = tokentrail.calculate_cost("azure.ai.openai", "gpt-4o-2024-08-06", call.token_usage, at=call.started_at)
    assert expected.total_cost is not None and call.cost_metrics.total_cost == expected.total_cost


def test_stream_helper_is_recorded_once(calls):
    instrument()
    replay = Replay([STREAMED])
    with client(replay).chat.completions.stream(**{k: v for k, v in STREAMED.request.items() if k != "stream"}) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.usage.completion_tokens == STREAMED.events[-1]["usage"]["completion_tokens"]
    (call,) = calls
    assert call.token_usage.output_tokens == final.usage.completion_tokens
    assert json.loads(replay.requests[0].content)["stream"] is True


def test_async_streams(calls):
    instrument(inject_stream_usage=True)

    async def main():
        sdk = async_client(Replay([STREAMED, STREAMED, _failing_async]))
        full = [c async for c in await sdk.chat.completions.create(**REQUEST)]
        stream = await sdk.chat.completions.create(**REQUEST)
        async for _ in stream:
            break
        await stream.close()
        broken = await sdk.chat.completions.create(**REQUEST)
        with pytest.raises(openai.APIConnectionError):
            async for _ in broken:
                pass
        return full

    full = asyncio.run(main())
    assert len(full) == len(STREAMED.events) - 1
    done, left, failed = calls
    assert done.token_usage.output_tokens == STREAMED.events[-1]["usage"]["completion_tokens"]
    assert "partial" not in done.provider_specific
    assert left.provider_specific["partial"] is True and left.status == "ok"
    assert failed.status == "error" and failed.error.type == "APIConnectionError"


def _failing_async(request: httpx2.Request) -> httpx2.Response:
    return _failing(request, asynchronous=True)


def test_async_stream_as_context_manager_and_anext(calls):
    instrument()

    async def main():
        sdk = async_client(Replay([STREAMED]))
        async with await sdk.chat.completions.create(**STREAMED.request) as stream:
            assert isinstance(stream, openai.AsyncStream)
            first = await stream.__anext__()
        return first

    first = asyncio.run(main())
    assert first.id == STREAMED.events[0]["id"]
    assert len(calls) == 1 and calls[0].provider_specific["partial"] is True
