from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from tokentrail.providers import extract_usage
from tokentrail.tracking import get_usage_extractor, llm_instrumented, set_llm_attributes, set_usage_extractor

CASSETTES = (
    Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "otel-python-contrib" / "instrumentation-genai"
)
OPENAI_CHAT = (
    CASSETTES / "opentelemetry-instrumentation-openai-v2/tests/cassettes/test_chat_completion_with_content.yaml"
)
ANTHROPIC_CACHE = (
    CASSETTES
    / "opentelemetry-instrumentation-anthropic/tests/cassettes/test_sync_messages_create_aggregates_cache_tokens.yaml"
)


def response_body(path: Path) -> dict:
    interaction = yaml.safe_load(path.read_text())["interactions"][0]
    body = interaction["response"]["body"]
    return json.loads(body["string"] if isinstance(body, dict) else body)


@pytest.fixture
def extractor():
    previous = set_usage_extractor(extract_usage)
    yield
    set_usage_extractor(previous)


def test_sync_function_usage_read_from_the_response(sink, extractor):
    body = response_body(OPENAI_CHAT)

    class MyClient:
        @llm_instrumented(provider="openai", tokens_from_response=True)
        def chat(self, model: str, messages: list) -> dict:
            return body

    result = MyClient().chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert result is body  # returned untouched
    call = sink.one()
    usage = body["usage"]
    assert (call.token_usage.input_tokens, call.token_usage.output_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert call.request_model == "gpt-4o-mini"  # from the call's model= argument
    assert call.provider_model == body["model"]
    assert call.response_metadata.request_id == body["id"]
    assert call.cost_metrics.total_cost is not None


def test_async_function_with_anthropic_conversion(sink, extractor):
    body = response_body(ANTHROPIC_CACHE)

    @llm_instrumented(provider="anthropic", model="claude-sonnet-4-20250514")
    async def ask() -> dict:
        await asyncio.sleep(0)
        return body

    assert asyncio.run(ask()) is body
    call = sink.one()
    raw = body["usage"]
    inclusive = raw["input_tokens"] + raw.get("cache_read_input_tokens", 0) + raw.get("cache_creation_input_tokens", 0)
    assert call.token_usage.input_tokens == inclusive
    assert call.token_usage.cache_read_tokens == raw["cache_read_input_tokens"]
    assert call.token_usage.cache_write_tokens == raw["cache_creation_input_tokens"]
    assert call.provider == "anthropic"


def test_exceptions_are_recorded_and_reraised_untouched(sink, extractor):
    boom = ConnectionError("reset")

    @llm_instrumented(provider="openai", model="gpt-4o")
    def call_model() -> None:
        raise boom

    @llm_instrumented(provider="openai", model="gpt-4o")
    async def call_model_async() -> None:
        raise boom

    with pytest.raises(ConnectionError) as raised:
        call_model()
    assert raised.value is boom
    with pytest.raises(ConnectionError):
        asyncio.run(call_model_async())
    records = sink.records()
    assert [(r.status, r.error.type) for r in records] == [("error", "ConnectionError")] * 2


def test_tokens_from_response_false_and_no_extractor(sink):
    previous = set_usage_extractor(None)
    try:
        assert get_usage_extractor() is None

        @llm_instrumented(provider="openai", model="gpt-4o", tokens_from_response=True)
        def without_extractor() -> dict:
            return {"usage": {"prompt_tokens": 1, "completion_tokens": 1}}

        set_usage_extractor(extract_usage)

        @llm_instrumented(provider="openai", model="gpt-4o", tokens_from_response=False)
        def not_reading() -> dict:
            return {"usage": {"prompt_tokens": 1, "completion_tokens": 1}}

        set_usage_extractor(None)
        without_extractor()
        set_usage_extractor(extract_usage)
        not_reading()
    finally:
        set_usage_extractor(previous)
    assert [r.token_usage for r in sink.records()] == [None, None]


def test_set_llm_attributes_inside_the_decorated_function(sink):
    @llm_instrumented(provider="openai", tokens_from_response=False)
    def manual() -> str:
        set_llm_attributes(model="gpt-4o", input_tokens=150, output_tokens=200, streaming=True)
        return "ok"

    assert manual() == "ok"
    call = sink.one()
    assert (call.request_model, call.token_usage.total_tokens, call.streaming) == ("gpt-4o", 350, True)


def test_wrapped_function_keeps_its_name():
    @llm_instrumented(provider="openai")
    def my_function() -> None:
        """Docs."""

    assert my_function.__name__ == "my_function" and my_function.__doc__ == "Docs."
