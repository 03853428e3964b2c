"""Anthropic Messages through the real `anthropic` SDK: usage exclusion rules, caching, thinking."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

import anthropic
from _mock_wire import assert_extracted, post

from tokentrail.mockprovider import REASONING_BY_EFFORT, MockProvider
from tokentrail.providers import extract_usage

MODEL = "claude-opus-4-5"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SYSTEM = "You are a meticulous assistant who follows the style guide. " * 90  # 5,400 chars, 1,350 tokens


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def test_basic_usage_and_headers(claude: anthropic.Anthropic, mock: MockProvider):
    mock.configure(requests_per_minute=60)  # refills one request a second: the decrement shows
    raw = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=500, system="Be kind.", messages=[{"role": "user", "content": "Hello, Claude"}]
    )
    message = raw.parse()
    assert message.id.startswith("msg_01") and message.model == MODEL and message.stop_reason == "end_turn"
    text = message.content[0].text
    assert message.usage.input_tokens == tokens("Be kind.") + tokens("Hello, Claude")
    assert message.usage.output_tokens == tokens(text)
    assert message.usage.cache_read_input_tokens == message.usage.cache_creation_input_tokens == 0
    assert message.usage.output_tokens_details is None  # no thinking requested
    assert raw.headers["request-id"].startswith("req_011C")
    for bucket in ("requests", "tokens", "input-tokens", "output-tokens"):
        assert RFC3339.match(raw.headers[f"anthropic-ratelimit-{bucket}-reset"])
        assert int(raw.headers[f"anthropic-ratelimit-{bucket}-remaining"]) < int(
            raw.headers[f"anthropic-ratelimit-{bucket}-limit"]
        )
    reset = datetime.strptime(raw.headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ")
    assert reset.replace(tzinfo=UTC) >= datetime.now(UTC).replace(microsecond=0)
    assert int(raw.headers["anthropic-ratelimit-output-tokens-remaining"]) == 40_000 - message.usage.output_tokens
    again = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=500, messages=[{"role": "user", "content": "Hello again"}]
    )
    assert int(again.headers["anthropic-ratelimit-requests-remaining"]) < int(
        raw.headers["anthropic-ratelimit-requests-remaining"]
    )
    assert_extracted(extract_usage(message, "anthropic", "messages"), mock.calls[-2].usage)


def test_cache_control_writes_then_reads_and_input_excludes_both(claude: anthropic.Anthropic, mock: MockProvider):
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    messages = [{"role": "user", "content": "Summarise the style guide."}]
    total = tokens(SYSTEM) + tokens(messages[0]["content"])
    first = claude.messages.create(model=MODEL, max_tokens=300, system=system, messages=messages)
    assert first.usage.cache_creation_input_tokens == tokens(SYSTEM)
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == total - tokens(SYSTEM)
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == tokens(SYSTEM)
    second = claude.messages.create(model=MODEL, max_tokens=300, system=system, messages=messages)
    assert second.usage.cache_read_input_tokens == tokens(SYSTEM)
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == total - tokens(SYSTEM)
    extracted = extract_usage(second, "anthropic", "messages")
    assert extracted.input_tokens == total  # tokentrail adds the cache counts back
    assert extracted.cache_read_tokens == tokens(SYSTEM)
    assert_extracted(extracted, mock.calls[-1].usage)


def test_one_hour_ttl_and_a_later_breakpoint_extend_the_cache(claude: anthropic.Anthropic):
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    first = claude.messages.create(
        model=MODEL, max_tokens=300, system=system, messages=[{"role": "user", "content": "a"}]
    )
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == tokens(SYSTEM)
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 0
    turn = "Here is a long document. " * 40  # 1,000 chars, 250 tokens
    messages = [{"role": "user", "content": [{"type": "text", "text": turn, "cache_control": {"type": "ephemeral"}}]}]
    second = claude.messages.create(model=MODEL, max_tokens=300, system=system, messages=messages)
    assert second.usage.cache_read_input_tokens == tokens(SYSTEM)
    assert second.usage.cache_creation_input_tokens == tokens(turn)  # only the new segment is written
    assert second.usage.cache_creation.ephemeral_5m_input_tokens == tokens(turn)
    assert second.usage.input_tokens == 0


def test_long_system_prompt_is_cached_by_default_and_short_ones_never(claude: anthropic.Anthropic, mock: MockProvider):
    messages = [{"role": "user", "content": "hi"}]
    first = claude.messages.create(model=MODEL, max_tokens=100, system=SYSTEM, messages=messages)
    second = claude.messages.create(model=MODEL, max_tokens=100, system=SYSTEM, messages=messages)
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (tokens(SYSTEM), 0)
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (0, tokens(SYSTEM))
    short = "Short system prompt."
    claude.messages.create(model=MODEL, max_tokens=100, system=short, messages=messages)
    again = claude.messages.create(model=MODEL, max_tokens=100, system=short, messages=messages)
    assert again.usage.cache_read_input_tokens == again.usage.cache_creation_input_tokens == 0
    mock.configure(auto_cache_system=False)
    other = SYSTEM.upper()
    claude.messages.create(model=MODEL, max_tokens=100, system=other, messages=messages)
    off = claude.messages.create(model=MODEL, max_tokens=100, system=other, messages=messages)
    assert off.usage.cache_read_input_tokens == off.usage.cache_creation_input_tokens == 0


def test_breakpoint_below_the_minimum_caches_nothing(claude: anthropic.Anthropic):
    system = [{"type": "text", "text": "tiny", "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        message = claude.messages.create(
            model=MODEL, max_tokens=50, system=system, messages=[{"role": "user", "content": "a"}]
        )
    assert message.usage.cache_read_input_tokens == message.usage.cache_creation_input_tokens == 0


def test_top_level_cache_control_caches_the_whole_prompt(mock: MockProvider):
    body = {
        "model": MODEL,
        "max_tokens": 50,
        "cache_control": {"type": "ephemeral"},
        "messages": [{"role": "user", "content": SYSTEM}],
    }
    post(f"{mock.url}/v1/messages", body)
    status, _, raw = post(f"{mock.url}/v1/messages", body)
    usage = json.loads(raw)["usage"]
    assert status == 200 and usage["cache_read_input_tokens"] == tokens(SYSTEM) and usage["input_tokens"] == 0


def test_thinking_is_reported_inside_output_tokens(claude: anthropic.Anthropic, mock: MockProvider):
    message = claude.messages.create(
        model=MODEL,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "Think hard"}],
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].signature
    thinking = message.usage.output_tokens_details.thinking_tokens
    assert thinking == REASONING_BY_EFFORT["medium"]
    assert message.usage.output_tokens == thinking + tokens(message.content[1].text)
    extracted = extract_usage(message, "anthropic", "messages")
    assert extracted.reasoning_tokens == thinking
    assert_extracted(extracted, mock.calls[-1].usage)
    small = claude.messages.create(
        model=MODEL,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 100},
        messages=[{"role": "user", "content": "Think a little"}],
    )
    assert small.usage.output_tokens_details.thinking_tokens == 100


def test_max_tokens_stops_the_answer(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model=MODEL, max_tokens=7, messages=[{"role": "user", "content": "Write an essay"}]
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 7


def test_stream_events_and_cumulative_usage(claude: anthropic.Anthropic, mock: MockProvider):
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    claude.messages.create(model=MODEL, max_tokens=300, system=system, messages=[{"role": "user", "content": "a"}])
    events = list(
        claude.messages.create(
            model=MODEL,
            max_tokens=3000,
            system=system,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "a"}],
            stream=True,
        )
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    start = events[0].message.usage
    assert start.output_tokens == 1  # placeholder
    assert start.cache_read_input_tokens == tokens(SYSTEM) and start.input_tokens == 1
    delta = events[-2].usage
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert delta.output_tokens == REASONING_BY_EFFORT["medium"] + tokens(text)
    assert delta.cache_read_input_tokens == tokens(SYSTEM)  # cumulative: repeats the input side
    assert delta.output_tokens_details.thinking_tokens == REASONING_BY_EFFORT["medium"]
    assert events[-2].delta.stop_reason == "end_turn"
    assert_extracted(extract_usage(events, "anthropic", "messages"), mock.calls[-1].usage)


def test_stream_helper_and_async(claude: anthropic.Anthropic, mock: MockProvider):
    with claude.messages.stream(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "hey"}]) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == tokens(final.content[0].text)


async def test_async_create_and_stream(mock: MockProvider):
    async with anthropic.AsyncAnthropic(base_url=mock.url, api_key="k", max_retries=0) as client:
        message = await client.messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "yo"}]
        )
        stream = await client.messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "yo"}], stream=True
        )
        events = [event async for event in stream]
    assert events[-2].usage.output_tokens == message.usage.output_tokens


def test_count_tokens(claude: anthropic.Anthropic):
    counted = claude.messages.count_tokens(
        model=MODEL, system="sys", messages=[{"role": "user", "content": "count me"}]
    )
    assert counted.input_tokens == tokens("sys") + tokens("count me")


def test_invalid_request_has_anthropics_error_shape(mock: MockProvider):
    status, headers, raw = post(
        f"{mock.url}/v1/messages", {"model": MODEL, "messages": [{"role": "user", "content": "a"}]}
    )
    body = json.loads(raw)
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    assert body["request_id"] == headers["request-id"]
