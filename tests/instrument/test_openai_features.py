"""OpenAI SDK paths beyond plain `create`: raw responses, structured outputs (`parse`),
retries, rate-limit headers, OpenAI-compatible base URLs."""

from __future__ import annotations

import asyncio
import gc
import json
from datetime import timedelta

import httpx2
import openai
import pytest
from _replay import Exchange, Replay, async_client, client, load, response_of, sse
from pydantic import BaseModel

import tokentrail
from tokentrail.instrument import instrument

PLAIN = load("test_chat_completion_metrics")[0]
STREAMED = load("test_chat_completion_streaming")[0]


def _with_headers(exchange: Exchange, headers: list[tuple[str, str]], status: int | None = None) -> Exchange:
    kept = [(k, v) for k, v in exchange.headers if not k.lower().startswith(("x-ratelimit", "x-request-id"))]
    return Exchange(exchange.request, exchange.uri, status or exchange.status, kept + headers, exchange.body)


def test_with_raw_response_is_recorded_once(calls):
    instrument()
    raw = client(Replay([PLAIN])).chat.completions.with_raw_response.create(**PLAIN.request)
    assert raw.headers["x-request-id"] == PLAIN.header("x-request-id")
    completion = raw.parse()
    assert completion.id == PLAIN.json["id"]
    (call,) = calls
    assert call.response_metadata.response_id == PLAIN.json["id"]
    assert call.token_usage.input_tokens == PLAIN.json["usage"]["prompt_tokens"]
    assert call.rate_limit_info.requests_limit == int(PLAIN.header("x-ratelimit-limit-requests"))
    assert call.attempt == 1


def test_with_raw_response_stream(calls):
    instrument()
    raw = client(Replay([STREAMED])).chat.completions.with_raw_response.create(**STREAMED.request)
    assert len(calls) == 0  # the body has not been read yet
    chunks = list(raw.parse())
    assert len(chunks) == len(STREAMED.events)
    (call,) = calls
    assert call.token_usage == tokentrail.extract_usage(STREAMED.events, "openai", "chat.completions")
    assert call.response_metadata.request_id == STREAMED.header("x-request-id")


def test_with_streaming_response_records_on_parse(calls):
    instrument()
    sdk = client(Replay([PLAIN]))
    with sdk.chat.completions.with_streaming_response.create(**PLAIN.request) as response:
        assert len(calls) == 0
        completion = response.parse()
    assert completion.id == PLAIN.json["id"]
    (call,) = calls
    assert call.token_usage.output_tokens == PLAIN.json["usage"]["completion_tokens"]
    assert call.response_metadata.request_id == PLAIN.header("x-request-id")


def test_with_streaming_response_stream(calls):
    instrument()
    sdk = client(Replay([STREAMED]))
    with sdk.chat.completions.with_streaming_response.create(**STREAMED.request) as response:
        stream = response.parse()
        assert response.parse() is stream  # the SDK caches what parse() returns; so does the proxy
        chunks = list(stream)
    assert len(chunks) == len(STREAMED.events)
    (call,) = calls
    assert call.token_usage == tokentrail.extract_usage(STREAMED.events, "openai", "chat.completions")


def test_with_streaming_response_never_parsed_is_still_recorded(calls):
    instrument()
    sdk = client(Replay([PLAIN]))
    with sdk.chat.completions.with_streaming_response.create(**PLAIN.request) as response:
        assert response.headers["x-request-id"] == PLAIN.header("x-request-id")
    del response
    gc.collect()
    (call,) = calls
    assert call.token_usage is None and call.response_metadata.request_id == PLAIN.header("x-request-id")


class Step(BaseModel):
    explanation: str
    output: str


class MathAnswer(BaseModel):
    steps: list[Step]
    final_answer: str


def _structured_body(content: str) -> dict:
    body = json.loads(PLAIN.body)
    body["choices"][0]["message"]["content"] = content
    return body


def test_parse_with_a_pydantic_model_records_its_schema(calls):
    instrument()
    answer = MathAnswer(steps=[Step(explanation="x", output="y")], final_answer="42")
    exchange = Exchange(
        {}, "", 200, [("content-type", "application/json")], json.dumps(_structured_body(answer.model_dump_json()))
    )
    replay = Replay([exchange])
    parsed = client(replay).chat.completions.parse(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "solve"}], response_format=MathAnswer
    )
    assert parsed.choices[0].message.parsed == answer
    (call,) = calls
    sent = replay.sent_json()["response_format"]["json_schema"]["schema"]
    assert call.response_schema == sent  # exactly what the SDK sent
    assert call.response_schema["properties"]["final_answer"] == {"title": "Final Answer", "type": "string"}
    assert call.token_usage.input_tokens == PLAIN.json["usage"]["prompt_tokens"]


def test_response_format_dict_schema(calls):
    instrument()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}
    client(Replay([PLAIN])).chat.completions.create(**PLAIN.request, response_format=fmt)
    assert calls[0].response_schema == schema


def test_responses_parse_with_text_format(calls):
    instrument()
    ex = load("test_responses_create_basic[content_mode0]")[0]
    body = ex.json
    answer = MathAnswer(steps=[], final_answer="1")
    body["output"][0]["content"][0]["text"] = answer.model_dump_json()
    replay = Replay([Exchange({}, "", 200, [("content-type", "application/json")], json.dumps(body))])
    parsed = client(replay).responses.parse(model="gpt-4o-mini", input="solve", text_format=MathAnswer)
    assert parsed.output_parsed == answer
    (call,) = calls
    assert call.response_schema == replay.sent_json()["text"]["format"]["schema"]
    assert call.response_metadata.response_id == body["id"]


def test_retries_are_counted(calls):
    instrument()
    limited = _with_headers(PLAIN, [("retry-after-ms", "1"), ("x-request-id", "req_429")], status=429)
    replay = Replay([limited, PLAIN])
    result = client(replay, max_retries=2).chat.completions.create(**PLAIN.request)
    assert result.id == PLAIN.json["id"]
    assert [r.headers["x-stainless-retry-count"] for r in replay.requests] == ["0", "1"]
    (call,) = calls
    assert call.attempt == 2 and call.status == "ok"
    assert call.response_metadata.request_id == PLAIN.header("x-request-id")


def test_retries_exhausted_record_the_429(calls):
    instrument()
    limited = _with_headers(
        PLAIN,
        [("retry-after", "2"), ("x-request-id", "req_429"), ("x-ratelimit-remaining-requests", "0"),
         ("x-ratelimit-reset-requests", "1m30s")],
        status=429,
    )  # fmt: skip
    limited = Exchange(
        limited.request, "", 429, limited.headers, '{"error": {"message": "slow down", "type": "requests"}}'
    )
    replay = Replay([limited, limited])
    with pytest.raises(openai.RateLimitError):
        client(replay, max_retries=1).chat.completions.create(**PLAIN.request)
    (call,) = calls
    assert call.attempt == 2 and call.status == "error" and call.error.http_status == 429
    assert call.error.type == "RateLimitError" and "slow down" in call.error.message
    limits = call.rate_limit_info
    assert limits.retry_after_ms == 2000.0 and limits.requests_remaining == 0
    assert call.started_at + timedelta(seconds=90) <= limits.requests_reset_at
    assert limits.requests_reset_at <= call.completed_at + timedelta(seconds=91)
    assert call.response_metadata.request_id == "req_429"


def test_async_retries_are_counted(calls):
    instrument()
    limited = _with_headers(PLAIN, [("retry-after-ms", "1")], status=429)

    async def main():
        return await async_client(Replay([limited, PLAIN]), max_retries=2).chat.completions.create(**PLAIN.request)

    assert asyncio.run(main()).id == PLAIN.json["id"]
    assert calls[0].attempt == 2


def test_connection_error_records_the_attempt(calls):
    instrument()

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(openai.APIConnectionError):
        client(Replay([refuse]), max_retries=0).chat.completions.create(**PLAIN.request)
    (call,) = calls
    assert call.status == "error" and call.error.type == "APIConnectionError" and call.attempt == 1
    assert call.error.http_status is None


@pytest.mark.parametrize(
    ("base_url", "provider", "port"),
    [
        ("https://api.openai.com/v1", "openai", 443),
        ("https://api.deepseek.com/v1", "deepseek", 443),
        ("https://api.groq.com/openai/v1", "groq", 443),
        ("https://api.together.xyz/v1", "together", 443),
        ("https://api.mistral.ai/v1", "mistral_ai", 443),
        ("https://api.x.ai/v1", "x_ai", 443),
        ("https://openrouter.ai/api/v1", "openrouter", 443),
        ("http://localhost:11434/v1", "ollama", 11434),
        ("http://10.0.0.7:8000/v1", "vllm", 8000),
        ("https://my-resource.openai.azure.com/openai/deployments/chat-prod", "azure.ai.openai", 443),
    ],
)
def test_provider_named_from_the_base_url(base_url, provider, port, calls):
    instrument()
    client(Replay([PLAIN]), base_url=base_url).chat.completions.create(**PLAIN.request)
    (call,) = calls
    assert call.provider == provider
    assert call.provider_specific["server_port"] == port
    assert call.provider_specific["server_address"] == httpx2.URL(base_url).host


def test_compatible_provider_name_is_configurable(calls):
    instrument(openai_compatible_provider="fireworks")
    client(Replay([PLAIN]), base_url="http://127.0.0.1:9999/v1").chat.completions.create(**PLAIN.request)
    assert calls[0].provider == "fireworks"


def test_rate_limit_headers_openai_style(calls):
    instrument()
    headers = [
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-reset-requests", "1h2m3.5s"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-tokens", "149000"),
        ("x-ratelimit-reset-tokens", "6m0s"),
        ("x-request-id", "req_abc"),
    ]
    client(Replay([_with_headers(PLAIN, headers)])).chat.completions.create(**PLAIN.request)
    limits = calls[0].rate_limit_info
    call = calls[0]
    assert (limits.requests_limit, limits.requests_remaining) == (60, 59)
    assert (limits.tokens_limit, limits.tokens_remaining) == (150000, 149000)
    for reset, seconds in ((limits.requests_reset_at, 3723.5), (limits.tokens_reset_at, 360.0)):
        assert (
            call.started_at + timedelta(seconds=seconds) <= reset <= call.completed_at + timedelta(seconds=seconds + 1)
        )
    assert limits.retry_after_ms is None


def test_headers_absent_means_no_rate_limits(calls):
    instrument()
    bare = Exchange({}, "", 200, [("content-type", "application/json")], PLAIN.body)
    client(Replay([bare])).chat.completions.create(**PLAIN.request)
    assert calls[0].rate_limit_info is None
    assert calls[0].response_metadata.request_id is None


def test_legacy_completions(calls):
    instrument(inject_stream_usage=True)
    body = {
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": " world", "finish_reason": "length", "logprobs": None}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }  # fmt: skip
    chunks = [
        {"id": "cmpl-2", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct",
         "choices": [{"index": 0, "text": t, "finish_reason": f, "logprobs": None}]}
        for t, f in ((" wor", None), ("ld", "stop"))
    ] + [{"id": "cmpl-2", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct", "choices": [],
          "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}}]  # fmt: skip
    streamed = Exchange({}, "", 200, [("content-type", "text/event-stream")], sse(chunks))
    plain = Exchange({}, "", 200, [("content-type", "application/json")], json.dumps(body))
    replay = Replay([plain, streamed])
    sdk = client(replay)
    sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="hello", max_tokens=1)
    got = list(sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="hello", stream=True))
    assert len(got) == 2 and replay.sent_json()["stream_options"] == {"include_usage": True}
    first, second = calls
    assert first.operation == "text_completion" and first.response_metadata.finish_reason == "length"
    assert first.request_parameters.max_tokens == 1 and first.token_usage.output_tokens == 1
    assert second.response_metadata.finish_reason == "stop" and second.token_usage.output_tokens == 2
    assert second.performance_metrics.time_to_first_token_ms is not None


def test_mock_transport_response_helper_roundtrip():
    # the replay helper itself: recorded headers and body come back as recorded
    response = response_of(PLAIN)
    assert response.headers["x-request-id"] == PLAIN.header("x-request-id")
    assert response.json()["id"] == PLAIN.json["id"]
