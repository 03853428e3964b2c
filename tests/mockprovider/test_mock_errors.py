"""Injected errors in each provider's shape, SDK retries, rate limits, latency, controls and secrecy."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import urllib.request

import anthropic
import openai
import pytest
from _mock_wire import RETRY_AFTER_MS, post
from google import genai
from google.genai import errors as genai_errors

from tokentrail.core import ValidationError
from tokentrail.mockprovider import MockProvider, go_duration

GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "claude-opus-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_openai_sdk_retries_a_forced_429_and_succeeds(mock: MockProvider):
    mock.fail_next("rate_limit", 1)
    started = time.monotonic()
    with openai.OpenAI(base_url=mock.openai_base_url, api_key="k", max_retries=2) as client:
        response = client.chat.completions.create(**CHAT)
    assert response.choices[0].message.content
    assert [call.status for call in mock.calls] == [429, 200]
    assert mock.calls[0].error == "rate_limit" and mock.calls[0].usage is None
    assert time.monotonic() - started < 2  # the SDK waited retry-after-ms, not its backoff


def test_429_wire_has_retry_headers_and_openais_error_body(mock: MockProvider):
    mock.fail_next("429")
    status, headers, raw = post(f"{mock.openai_base_url}/chat/completions", CHAT)
    assert status == 429
    assert headers["retry-after-ms"] == str(RETRY_AFTER_MS) and headers["retry-after"] == "1"
    assert headers["x-request-id"].startswith("req_")
    error = json.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "rate_limit_exceeded" and "Rate limit reached for gpt-4o" in error["message"]


def test_header_forces_errors_on_the_first_attempts_only(mock: MockProvider):
    # the SDK numbers its attempts in x-stainless-retry-count; only the first two fail
    headers = {"x-mock-error": "429", "x-mock-error-attempts": "2", "x-mock-retry-after-ms": "5"}
    with openai.OpenAI(base_url=mock.openai_base_url, api_key="k", max_retries=2, default_headers=headers) as client:
        response = client.chat.completions.create(**CHAT)
    assert response.usage.prompt_tokens == 1
    assert [call.status for call in mock.calls] == [429, 429, 200]


def test_anthropic_sdk_retries_a_forced_429_and_reports_529_overloaded(mock: MockProvider):
    mock.fail_next("rate_limit", provider="anthropic")
    with anthropic.Anthropic(base_url=mock.url, api_key="k", max_retries=1) as client:
        message = client.messages.create(**MESSAGE)
        assert message.usage.output_tokens > 0
        assert [call.status for call in mock.calls] == [429, 200]
        mock.fail_next("overloaded")
        with pytest.raises(anthropic.OverloadedError) as caught:
            client.with_options(max_retries=0).messages.create(**MESSAGE)
    error = caught.value
    assert error.status_code == 529
    assert error.body["type"] == "error" and error.body["error"]["type"] == "overloaded_error"
    assert error.body["request_id"] == error.response.headers["request-id"]


def test_anthropic_429_wire(mock: MockProvider):
    mock.fail_next("rate_limit")
    status, headers, raw = post(f"{mock.url}/v1/messages", MESSAGE)
    body = json.loads(raw)
    assert status == 429 and headers["retry-after"] == "0.02"
    assert body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": body["error"]["message"]},
        "request_id": headers["request-id"],
    }


def test_gemini_resource_exhausted_carries_retry_delay(gem: genai.Client, mock: MockProvider):
    mock.fail_next("rate_limit", provider="gemini")
    with pytest.raises(genai_errors.ClientError) as caught:
        gem.models.generate_content(model="gemini-2.5-flash", contents="hi")
    error = caught.value
    assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED"
    details = error.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.02s"} in details
    mock.fail_next("server_error")
    with pytest.raises(genai_errors.ServerError) as server:
        gem.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert server.value.code == 500 and server.value.status == "INTERNAL"


@pytest.mark.parametrize(
    ("kind", "path", "body", "status", "check"),
    [
        ("server_error", "/v1/chat/completions", CHAT, 500, lambda b: b["error"]["type"] == "server_error"),
        ("overloaded", "/v1/chat/completions", CHAT, 503, lambda b: b["error"]["code"] is None),
        ("unauthorized", "/v1/chat/completions", CHAT, 401, lambda b: b["error"]["code"] == "invalid_api_key"),
        ("server_error", "/v1/messages", MESSAGE, 500, lambda b: b["error"]["type"] == "api_error"),
        ("overloaded", "/v1/messages", MESSAGE, 529, lambda b: b["error"]["type"] == "overloaded_error"),
        (
            "overloaded",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            GEMINI,
            503,
            lambda b: b["error"]["status"] == "UNAVAILABLE" and b["error"]["code"] == 503,
        ),
        (
            "not_found",
            "/openai/deployments/d/chat/completions",
            CHAT,
            404,
            lambda b: set(b["error"]) == {"code", "message"},
        ),
    ],
)
def test_error_bodies_have_each_providers_shape(mock: MockProvider, kind, path, body, status, check):
    mock.fail_next(kind)
    got, _, raw = post(mock.url + path, body)
    assert got == status and check(json.loads(raw))


def test_error_rate_is_reproducible_with_a_seed(mock: MockProvider):
    def statuses(seed: int) -> list[int]:
        with MockProvider(port=0, error_rate=0.5, seed=seed, error_kinds=("overloaded",)) as server:
            return [post(f"{server.openai_base_url}/chat/completions", CHAT)[0] for _ in range(12)]

    first, again, other = statuses(7), statuses(7), statuses(8)
    assert first == again and set(first) == {200, 503}
    assert first != other


def test_bucket_exhaustion_is_a_real_429_and_reset_headers_are_go_durations(oai: openai.OpenAI, mock: MockProvider):
    mock.configure(requests_per_minute=2, tokens_per_minute=6000)
    first = oai.chat.completions.with_raw_response.create(**CHAT)
    used = first.parse().usage.total_tokens
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"] == "30s"  # one request refills in a minute / 2
    assert first.headers["x-ratelimit-remaining-tokens"] == str(6000 - used)
    assert first.headers["x-ratelimit-reset-tokens"] == go_duration(used * 60 / 6000)
    second = oai.chat.completions.with_raw_response.create(**CHAT)
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert all(GO_DURATION.match(second.headers[f"x-ratelimit-reset-{k}"]) for k in ("requests", "tokens"))
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(**CHAT)
    retry_ms = int(caught.value.response.headers["retry-after-ms"])
    assert 29_000 <= retry_ms <= 30_000
    assert caught.value.response.headers["retry-after"] == str(math.ceil(retry_ms / 1000))
    assert "requests per min" in caught.value.message
    # another API key has its own buckets
    with openai.OpenAI(base_url=mock.openai_base_url, api_key="other-key", max_retries=0) as other:
        fresh = other.chat.completions.with_raw_response.create(**CHAT)
    assert fresh.headers["x-ratelimit-remaining-requests"] == "1"


def test_latency_and_per_token_pacing_are_honoured(oai: openai.OpenAI, mock: MockProvider):
    started = time.monotonic()
    oai.chat.completions.create(**CHAT, extra_headers={"x-mock-latency-ms": "150"})
    assert time.monotonic() - started >= 0.14
    mock.configure(latency_ms=100, token_latency_ms=5)
    started = time.monotonic()
    stream = oai.chat.completions.create(**CHAT, stream=True, extra_headers={"x-mock-output-tokens": "40"})
    first_chunk = next(iter(stream))
    time_to_first = time.monotonic() - started
    rest = list(stream)
    total = time.monotonic() - started
    assert first_chunk.choices[0].delta.role == "assistant" and rest
    assert time_to_first >= 0.09
    assert total - time_to_first >= 0.15  # 40 tokens at 5 ms each, loosely


def test_stop_ends_a_slow_stream_promptly(mock: MockProvider):
    mock.configure(token_latency_ms=200)
    results: list[object] = []

    def consume() -> None:
        try:
            with openai.OpenAI(base_url=mock.openai_base_url, api_key="k", max_retries=0) as client:
                stream = client.chat.completions.create(
                    **CHAT, stream=True, extra_headers={"x-mock-output-tokens": "500"}
                )
                results.extend(stream)
        except Exception as exc:  # the connection is cut: that is the point
            results.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    mock.stop()
    reader.join(timeout=5)
    assert not reader.is_alive() and time.monotonic() - started < 2
    assert isinstance(results[-1], Exception)


def test_bad_input_is_a_400_naming_the_problem(mock: MockProvider):
    status, _, raw = post(f"{mock.openai_base_url}/chat/completions", CHAT, {"x-mock-latency-ms": "soon"})
    assert status == 400 and "x-mock-latency-ms" in json.loads(raw)["error"]["message"]
    status, _, raw = post(f"{mock.openai_base_url}/chat/completions", b"{not json")
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    status, _, raw = post(f"{mock.openai_base_url}/chat/completions", {"messages": CHAT["messages"]})
    assert status == 400 and json.loads(raw)["error"]["param"] == "model"
    status, _, raw = post(f"{mock.url}/v1/unknown", CHAT)
    assert status == 404 and "Invalid URL" in json.loads(raw)["error"]["message"]


def test_invalid_settings_are_refused_with_the_field_named():
    with pytest.raises(ValidationError) as caught:
        MockProvider(port=0, error_rate=1.5)
    assert caught.value.field == "error_rate"
    with pytest.raises(ValidationError) as kind:
        MockProvider(port=0, error_kinds=("teapot",))
    assert kind.value.field == "error_kinds"
    with pytest.raises(ValidationError):
        MockProvider(port=0).fail_next("rate_limit", provider="cohere")


def test_control_endpoints(mock: MockProvider):
    assert json.loads(urllib.request.urlopen(f"{mock.url}/health", timeout=5).read())["status"] == "ok"
    assert post(f"{mock.url}/mock/fail-next", {"error": "529", "count": 2, "provider": "anthropic"})[0] == 200
    assert post(f"{mock.openai_base_url}/chat/completions", CHAT)[0] == 200  # other providers unaffected
    assert [post(f"{mock.url}/v1/messages", MESSAGE)[0] for _ in range(3)] == [529, 529, 200]
    calls = json.loads(urllib.request.urlopen(f"{mock.url}/mock/calls", timeout=5).read())["calls"]
    assert [c["status"] for c in calls] == [200, 529, 529, 200]
    assert calls[-1]["usage"]["input_tokens"] == 1
    assert post(f"{mock.url}/mock/fail-next", {"error": "teapot"})[0] == 400
    long_chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "y" * 6000}]}
    post(f"{mock.openai_base_url}/chat/completions", long_chat)
    assert post(f"{mock.url}/mock/reset", {})[0] == 200
    _, _, raw = post(f"{mock.openai_base_url}/chat/completions", long_chat)
    assert json.loads(raw)["usage"]["prompt_tokens_details"]["cached_tokens"] == 0  # the cache was forgotten
    assert len(mock.calls) == 1


def test_api_keys_are_never_logged_or_kept(mock: MockProvider, caplog: pytest.LogCaptureFixture):
    secret = "sk-live-very-secret-123"
    with caplog.at_level(logging.INFO, logger="tokentrail.mockprovider"):
        post(f"{mock.openai_base_url}/chat/completions", CHAT, {"authorization": f"Bearer {secret}"})
        post(f"{mock.url}/v1beta/models/gemini-2.5-flash:generateContent?key={secret}", GEMINI)
    assert "POST /v1/chat/completions 200" in caplog.text
    assert secret not in caplog.text
    assert secret not in json.dumps([call.to_dict() for call in mock.calls])
