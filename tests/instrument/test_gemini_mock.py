"""google-genai against the mock provider over loopback, with `instrument()`: sync, async,
streams, embeddings, implicit caching on a repeated long prompt, thinking, streams left
early, errors with retries and `retryDelay`, request parameters from `config`, `wrap_gemini`."""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials

import tokentrail
from tokentrail.instrument import instrument, instrumented, uninstrument, wrap_gemini
from tokentrail.mockprovider import MockProvider

MODEL = "gemini-2.5-flash"
LONG_PROMPT = "Summarise the history of the printing press in detail. " * 120  # ~1700 tokens


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.fixture
def mock():
    with MockProvider(port=0, retry_after_ms=20) as server:
        yield server


_CLIENTS: list[genai.Client] = []


def client(mock: MockProvider, **http: Any) -> genai.Client:
    """A Gemini API client, kept alive for the test (a dropped `Client` closes its transport,
    even while its `models` are in use)."""
    _CLIENTS.append(genai.Client(api_key="test", http_options=types.HttpOptions(base_url=mock.url, **http)))
    return _CLIENTS[-1]


@pytest.fixture(autouse=True)
def _drop_clients():
    yield
    _CLIENTS.clear()


def check_billed(call: tokentrail.LLMCall, mock: MockProvider, index: int = -1) -> None:
    billed = mock.calls[index].usage
    usage = call.token_usage
    assert (usage.input_tokens, usage.output_tokens) == (billed.input_tokens, billed.output_tokens)
    assert (usage.cache_read_tokens or 0) == billed.cache_read_tokens
    assert (usage.reasoning_tokens or 0) == billed.reasoning_tokens
    assert call.cost_metrics.pricing_status == "priced" and call.cost_metrics.total_cost > 0


def test_generate_content_records_usage_params_and_metadata(mock, calls):
    assert instrument("google") == ["gemini"]
    gemini = client(mock)
    config = types.GenerateContentConfig(
        temperature=0.3,
        top_p=0.9,
        top_k=40.0,
        max_output_tokens=900,
        stop_sequences=["END"],
        seed=7,
        candidate_count=1,
        presence_penalty=0.1,
        thinking_config=types.ThinkingConfig(thinking_budget=128),
    )
    response = gemini.models.generate_content(model=f"models/{MODEL}", contents="Name a city.", config=config)
    (call,) = calls
    check_billed(call, mock)
    assert call.provider == "gcp.gemini" and call.operation == "generate_content"
    assert call.request_model == MODEL and call.provider_model == response.model_version
    assert call.token_usage.reasoning_tokens == 128  # the thinking budget caps the mock's thoughts
    params = call.request_parameters.to_dict()
    assert params == {
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 900,
        "stop_sequences": ["END"],
        "seed": 7,
        "n": 1,
        "presence_penalty": 0.1,
    }
    assert call.provider_specific["request_params"] == {"thinking_budget": 128}
    meta = call.response_metadata
    assert meta.response_id == response.response_id
    assert meta.model_version == response.model_version
    assert meta.finish_reason == "STOP"
    assert call.attempt == 1 and call.streaming is False


def test_repeated_long_prompt_hits_the_implicit_cache(mock, calls):
    instrument("gemini")
    gemini = client(mock)
    for _ in range(2):
        gemini.models.generate_content(model=MODEL, contents=LONG_PROMPT)
    first, second = calls
    check_billed(first, mock, 0)
    check_billed(second, mock, 1)
    assert first.token_usage.cache_read_tokens is None
    assert second.token_usage.cache_read_tokens == mock.calls[1].usage.cache_read_tokens >= 1024
    assert second.cost_metrics.cache_read_cost > 0
    assert second.cost_metrics.input_cost < first.cost_metrics.input_cost


def test_response_schema_from_a_pydantic_type_and_from_json(mock, calls):
    instrument("gemini")
    gemini = client(mock)
    gemini.models.generate_content(
        model=MODEL, contents="A city?", config={"response_mime_type": "application/json", "response_schema": City}
    )
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    gemini.models.generate_content(
        model=MODEL,
        contents="A city?",
        config={"response_mime_type": "application/json", "response_json_schema": schema},
    )
    first, second = calls
    assert first.response_schema == City.model_json_schema()
    assert second.response_schema == schema
    assert first.provider_specific["request_params"] == {"response_mime_type": "application/json"}


def test_stream(mock, calls):
    instrument("gemini")
    chunks = list(client(mock).models.generate_content_stream(model=MODEL, contents="Tell me a story."))
    assert len(chunks) > 2
    (call,) = calls
    check_billed(call, mock)
    assert call.streaming is True and call.request_parameters.stream is True
    assert call.response_metadata.response_id == chunks[-1].response_id
    assert call.response_metadata.finish_reason == "STOP"
    assert 0 < call.performance_metrics.time_to_first_token_ms <= call.performance_metrics.total_duration_ms
    assert call.attempt == 1  # the lazy request ran with the call in flight


def test_stream_left_early_is_partial(mock, calls):
    instrument("gemini")
    stream = client(mock).models.generate_content_stream(model=MODEL, contents="Tell me a story.")
    first = next(iter(stream))
    stream.close()
    (call,) = calls
    assert call.status == "ok" and call.provider_specific["partial"] is True
    # running totals: the usage of the last chunk seen, never more than was billed
    assert call.token_usage.output_tokens == first.usage_metadata.candidates_token_count + (
        first.usage_metadata.thoughts_token_count or 0
    )
    assert call.token_usage.output_tokens < mock.calls[0].usage.output_tokens


def test_embed_content(mock, calls):
    instrument("gemini")
    result = client(mock).models.embed_content(
        model="gemini-embedding-001", contents=["a", "b"], config={"output_dimensionality": 8}
    )
    assert len(result.embeddings) == 2
    (call,) = calls
    assert call.operation == "embeddings" and call.request_model == "gemini-embedding-001"
    assert call.token_usage is None  # the Gemini API reports no embedding usage: unknown, not zero
    assert call.streaming is None
    assert call.provider_specific["request_params"] == {"output_dimensionality": 8}


def test_async_generate_stream_and_embed(mock, calls):
    instrument("gemini")
    gemini = client(mock)

    async def main() -> None:
        await gemini.aio.models.generate_content(model=MODEL, contents="Hello")
        async for _ in await gemini.aio.models.generate_content_stream(model=MODEL, contents="Hello"):
            pass
        await gemini.aio.models.embed_content(model="gemini-embedding-001", contents="a")

    asyncio.run(main())
    assert [c.operation for c in calls] == ["generate_content", "generate_content", "embeddings"]
    check_billed(calls[0], mock, 0)
    check_billed(calls[1], mock, 1)
    assert [c.streaming for c in calls] == [False, True, None]
    assert [c.attempt for c in calls] == [1, 1, 1]


def test_rate_limited_call_is_retried_and_counted(mock, calls):
    instrument("gemini")
    mock.fail_next("rate_limit", count=2, provider="gemini")
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02)
    client(mock, retry_options=retry).models.generate_content(model=MODEL, contents="Hello")
    (call,) = calls
    assert call.status == "ok" and call.attempt == 3
    check_billed(call, mock)


def test_rate_limit_error_records_retry_delay(mock, calls):
    instrument("gemini")
    mock.fail_next("rate_limit", count=2, provider="gemini")
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0.01, max_delay=0.02)
    with pytest.raises(errors.ClientError) as caught:
        client(mock, retry_options=retry).models.generate_content(model=MODEL, contents="Hello")
    (call,) = calls
    assert call.status == "error" and call.error.http_status == 429 == caught.value.code
    assert call.error.type == "ClientError"
    assert call.provider_specific["error_type"] == "RESOURCE_EXHAUSTED"
    assert call.rate_limit_info.retry_after_ms == pytest.approx(20.0)
    assert call.attempt == 2 and call.token_usage is None


def test_raw_http_response_config_is_read_from_the_body(mock, calls):
    instrument("gemini")
    client(mock).models.generate_content(
        model=MODEL, contents="Hello", config=types.GenerateContentConfig(should_return_http_response=True)
    )
    (call,) = calls
    check_billed(call, mock)


def test_content_capture(mock, calls):
    tokentrail.configure(sinks=["memory"], capture_content=True)
    instrument("gemini")
    response = client(mock).models.generate_content(
        model=MODEL, contents="Hello", config={"system_instruction": "Be brief."}
    )
    (call,) = calls
    assert call.content.messages == {"system_instruction": "Be brief.", "contents": "Hello"}
    assert call.content.result == response.text


def test_wrap_one_client_only(mock, calls):
    wrapped = wrap_gemini(client(mock))
    other = client(mock)
    other.models.generate_content(model=MODEL, contents="Hello")
    assert calls == [] and instrumented() == []
    wrapped.models.generate_content(model=MODEL, contents="Hello")
    list(wrapped.models.generate_content_stream(model=MODEL, contents="Hello"))

    async def main() -> None:
        await wrapped.aio.models.generate_content(model=MODEL, contents="Hello")

    asyncio.run(main())
    assert len(calls) == 3
    for index, call in enumerate(calls, start=1):
        check_billed(call, mock, index)


def test_vertex_mode_is_named_gcp_vertex_ai(mock, calls):
    instrument("gemini")
    vertex = genai.Client(
        vertexai=True,
        project="p",
        location="us-central1",
        credentials=Credentials("test-token"),
        http_options=types.HttpOptions(base_url=mock.url),
    )
    vertex.models.generate_content(model=MODEL, contents="Hello")
    (call,) = calls
    assert call.provider == "gcp.vertex_ai"
    check_billed(call, mock)


def test_uninstrument_stops_recording(mock, calls):
    instrument("google-genai")
    uninstrument("google")
    client(mock).models.generate_content(model=MODEL, contents="Hello")
    assert calls == [] and instrumented() == []
