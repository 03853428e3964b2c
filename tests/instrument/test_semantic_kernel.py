"""Seed 003 (the Semantic Kernel assistant): Semantic Kernel's OpenAI connector calls the
OpenAI SDK, so `instrument("openai")` records its chat completions — plain and streamed —
with the usage the mock provider billed and a cost."""

from __future__ import annotations

import asyncio

import pytest

sk_openai = pytest.importorskip(
    "semantic_kernel.connectors.ai.open_ai", reason="semantic-kernel is not installed (pip install semantic-kernel)"
)
from openai import AsyncOpenAI  # noqa: E402
from semantic_kernel.contents import ChatHistory  # noqa: E402

import tokentrail  # noqa: E402
from tokentrail.instrument import instrument  # noqa: E402
from tokentrail.mockprovider import MockProvider  # noqa: E402


@pytest.fixture
def mock():
    with MockProvider(port=0) as server:
        yield server


def service(mock: MockProvider) -> object:
    return sk_openai.OpenAIChatCompletion(
        ai_model_id="gpt-4o-mini", async_client=AsyncOpenAI(api_key="test", base_url=mock.openai_base_url)
    )


def check(call: tokentrail.LLMCall, billed: object) -> None:
    assert call.provider == "openai" and call.request_model == "gpt-4o-mini"
    usage = call.token_usage
    assert (usage.input_tokens, usage.output_tokens) == (billed.usage.input_tokens, billed.usage.output_tokens)
    assert call.estimated is None  # reported usage, not counted locally
    assert call.response_metadata.request_id == billed.request_id
    expected = tokentrail.calculate_cost("openai", call.provider_model, usage, at=call.started_at)
    assert call.cost_metrics.pricing_status == "priced"
    assert call.cost_metrics.total_cost == expected.total_cost > 0


def test_chat_completion_through_semantic_kernel_is_recorded(mock, calls):
    instrument("openai", openai_compatible_provider="openai")  # the loopback mock stands for OpenAI
    chat = service(mock)
    history = ChatHistory()
    history.add_user_message("What is the capital of France?")

    async def main() -> tuple[str, str]:
        settings = sk_openai.OpenAIChatPromptExecutionSettings(max_tokens=200, temperature=0.1)
        answer = await chat.get_chat_message_content(history, settings)
        parts = [str(chunk) async for chunk in chat.get_streaming_chat_message_content(history, settings)]
        return str(answer), "".join(parts)

    answer, streamed = asyncio.run(main())
    assert answer and streamed
    plain, stream = calls
    check(plain, mock.calls[0])
    check(stream, mock.calls[1])
    assert plain.streaming is False and stream.streaming is True
    assert plain.request_parameters.max_tokens == 200 and plain.request_parameters.temperature == 0.1
    assert stream.performance_metrics.time_to_first_token_ms is not None
