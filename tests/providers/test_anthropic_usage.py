"""Anthropic Messages usage (PROVIDERS.md A.5): recorded responses, SDK objects, documented cases."""

from __future__ import annotations

import copy
import warnings
from decimal import Decimal
from typing import Any

import anthropic as anthropic_sdk
import pytest
from _cassette_replay import ANTHROPIC, load, parse_sse, replay
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.beta import BetaMessage
from genai_prices import Usage, calc_price
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers import anthropic, extract_usage

EVENT = TypeAdapter(RawMessageStreamEvent)
MODEL = "claude-sonnet-4-6"  # any name: the replay answers with the recording

NON_STREAMING = [
    "test_sync_messages_create_basic",
    "test_sync_messages_create_aggregates_cache_tokens",
    "test_sync_messages_create_captures_thinking_content",
    "test_sync_messages_create_captures_tool_use_content",
]
STREAMING = [
    "test_sync_messages_create_streaming",
    "test_sync_messages_create_streaming_aggregates_cache_tokens",
    "test_sync_messages_stream",
]


def recorded(name: str) -> Any:
    interaction = load(ANTHROPIC / f"{name}.yaml")[0]
    return interaction.json if interaction.is_json else parse_sse(interaction.body)


def inclusive_input(raw: dict[str, Any]) -> int:
    """The A.5 rule, applied to a recorded usage block's own fields."""
    return raw["input_tokens"] + raw.get("cache_creation_input_tokens", 0) + raw.get("cache_read_input_tokens", 0)


def genai_usage(usage: TokenUsage) -> Usage:
    """The genai-prices usage of a normalised TokenUsage (details are genai-prices keys)."""
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
        **dict(usage.details or {}),
    )


def message(usage: dict[str, Any], model: str = MODEL) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


# ---- recorded responses ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NON_STREAMING)
def test_recorded_message_follows_the_rule(name: str) -> None:
    body = recorded(name)
    raw = body["usage"]
    usage = anthropic.extract(body)
    assert usage is not None
    assert usage.input_tokens == inclusive_input(raw)
    assert usage.cache_read_tokens == raw["cache_read_input_tokens"]
    assert usage.cache_write_tokens == raw["cache_creation_input_tokens"]
    assert usage.output_tokens == raw["output_tokens"]
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    # the same body as the SDK's own type, and through the public dispatcher
    assert anthropic.extract(Message.model_validate(body)) == usage
    assert anthropic.extract(Message.model_validate(body).usage) == usage
    assert extract_usage(body, "anthropic") == usage
    assert extract_usage(body, "claude", "messages") == usage


def test_recorded_thinking_response_keeps_thinking_inside_output() -> None:
    body = recorded("test_sync_messages_create_captures_thinking_content")
    assert any(block["type"] == "thinking" for block in body["content"])
    usage = anthropic.extract(body)
    assert usage is not None
    assert usage.output_tokens == body["usage"]["output_tokens"] == 417  # not added to again
    assert usage.reasoning_tokens is None  # this recording predates `output_tokens_details`


@pytest.mark.parametrize("name", STREAMING)
def test_recorded_stream_overwrites_with_the_cumulative_delta(name: str) -> None:
    events = recorded(name)
    start = next(e for e in events if e["type"] == "message_start")["message"]["usage"]
    final = [e for e in events if e["type"] == "message_delta"][-1]["usage"]
    assert start["output_tokens"] != final["output_tokens"]  # the start's count is a placeholder
    usage = anthropic.extract(events)
    assert usage is not None
    assert usage.output_tokens == final["output_tokens"]
    assert usage.input_tokens == inclusive_input(final) == inclusive_input(start)
    assert usage.cache_read_tokens == final["cache_read_input_tokens"]
    # the SDK's event objects give the same result, fed one by one (the SDK drops pings)
    state = anthropic.MessageStreamState()
    for event in events:
        if event["type"] != "ping":
            state.feed(EVENT.validate_python(event))
    assert state.result() == usage
    assert extract_usage(events, "anthropic", "messages") == usage


def test_recorded_api_error_has_no_usage() -> None:
    interaction = load(ANTHROPIC / "test_sync_messages_create_api_error.yaml")[0]
    assert interaction.status == 404
    assert anthropic.extract(interaction.json) is None
    assert extract_usage(interaction.json, "anthropic") is None


# ---- the real SDK over loopback -------------------------------------------------------------
def client(base_url: str) -> anthropic_sdk.Anthropic:
    return anthropic_sdk.Anthropic(base_url=base_url, api_key="test-key", max_retries=0)


@pytest.mark.parametrize("name", NON_STREAMING)
def test_sdk_create_replayed(name: str) -> None:
    interactions = load(ANTHROPIC / f"{name}.yaml")
    with replay(interactions) as server:
        result = client(server.base_url).messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Say hello in one word."}]
        )
    assert isinstance(result, Message)
    assert server.requests[0][1] == "/v1/messages"
    assert anthropic.extract(result) == anthropic.extract(interactions[0].json)


def test_sdk_create_stream_replayed() -> None:
    interactions = load(ANTHROPIC / "test_sync_messages_create_streaming.yaml")
    state = anthropic.MessageStreamState()
    with replay(interactions) as server:
        stream = client(server.base_url).messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        for event in stream:
            state.feed(event)
    assert state.result() == anthropic.extract(parse_sse(interactions[0].body))
    assert state.result().output_tokens == 5


def test_sdk_stream_helper_events_and_final_message() -> None:
    interactions = load(ANTHROPIC / "test_sync_messages_stream.yaml")
    state = anthropic.MessageStreamState()
    messages = [{"role": "user", "content": "Hi"}]
    with (
        replay(interactions) as server,
        client(server.base_url).messages.stream(model=MODEL, max_tokens=100, messages=messages) as stream,
    ):
        kinds = []
        for event in stream:  # the helper adds `text` and snapshot events of its own
            kinds.append(event.type)
            state.feed(event)
        final = stream.get_final_message()
        snapshot_usage = anthropic.extract(stream)  # the helper's accumulated snapshot
    assert "text" in kinds and "message_stop" in kinds
    expected = anthropic.extract(parse_sse(interactions[0].body))
    assert state.result() == expected
    assert anthropic.extract(final) == expected
    assert snapshot_usage == expected


def test_sdk_api_error_replayed() -> None:
    interactions = load(ANTHROPIC / "test_sync_messages_create_api_error.yaml")
    with replay(interactions) as server, pytest.raises(anthropic_sdk.NotFoundError) as caught:
        client(server.base_url).messages.create(
            model="invalid-model-name", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
        )
    assert anthropic.extract(caught.value.body) is None


# ---- documented cases -----------------------------------------------------------------------
PROMPT_CACHING = {
    "input_tokens": 3,
    "cache_creation_input_tokens": 418,
    "cache_read_input_tokens": 1111,
    "cache_creation": {"ephemeral_5m_input_tokens": 118, "ephemeral_1h_input_tokens": 300},
    "output_tokens": 50,
}


def test_cache_counts_are_added_to_input_with_the_ttl_split() -> None:
    usage = anthropic.extract(message(PROMPT_CACHING))
    assert usage == TokenUsage(
        input_tokens=1532,
        output_tokens=50,
        total_tokens=1582,
        cache_read_tokens=1111,
        cache_write_tokens=418,
        details={"cache_write_5m_tokens": 118, "cache_write_1h_tokens": 300},
    )
    assert usage.uncached_input_tokens == 3
    assert anthropic.extract(Message.model_validate(message(PROMPT_CACHING))) == usage


def test_ttl_split_prices_5m_writes_at_1_25x_and_1h_writes_at_2x() -> None:
    usage = anthropic.extract(message(PROMPT_CACHING))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every detail key must be a genai-prices usage key
        price = calc_price(genai_usage(usage), "claude-haiku-4-5", provider_id="anthropic")
    rates = price.model_price
    per_token = Decimal(1_000_000)
    expected = (
        3 * rates.input_mtok
        + 1111 * rates.cache_read_mtok
        + 118 * rates.input_mtok * Decimal("1.25")
        + 300 * rates.input_mtok * 2
        + 50 * rates.output_mtok
    ) / per_token
    assert price.total_price == expected


def test_thinking_tokens_are_reasoning_inside_output() -> None:
    usage = anthropic.extract(
        message({"input_tokens": 46, "output_tokens": 417, "output_tokens_details": {"thinking_tokens": 300}})
    )
    assert (usage.output_tokens, usage.reasoning_tokens, usage.total_tokens) == (417, 300, 463)


def test_web_search_requests_become_a_detail() -> None:
    raw = {
        "input_tokens": 10,
        "output_tokens": 5,
        "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
    }
    usage = anthropic.extract(Message.model_validate(message(raw)))
    assert usage.details == {"web_searches": 2}


def start_event(usage: dict[str, Any], model: str = MODEL) -> dict[str, Any]:
    body = message(usage, model)
    body["content"] = []
    return {"type": "message_start", "message": body}


def delta_event(usage: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None}, "usage": usage}


def test_cumulative_deltas_overwrite_and_never_add() -> None:
    events = [
        start_event(
            {"input_tokens": 3, "cache_creation_input_tokens": 418, "cache_read_input_tokens": 1111, "output_tokens": 1}
        ),
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        delta_event({"output_tokens": 20}),
        delta_event({"output_tokens": 57}),
    ]
    usage = anthropic.extract(events)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1532, 57, 1111)


def test_a_delta_carrying_input_and_cache_overwrites_those_too() -> None:
    events = [
        start_event(
            {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
        ),
        delta_event(
            {
                "input_tokens": 12,
                "cache_read_input_tokens": 500,
                "output_tokens": 9,
                "output_tokens_details": {"thinking_tokens": 4},
            }
        ),
    ]
    usage = anthropic.extract([EVENT.validate_python(event) for event in events])
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (512, 500, 0)
    assert (usage.output_tokens, usage.reasoning_tokens) == (9, 4)


def test_a_stream_cut_after_message_start_reports_what_was_sent() -> None:
    usage = anthropic.extract([start_event({"input_tokens": 13, "output_tokens": 1})])
    assert (usage.input_tokens, usage.output_tokens) == (13, 1)


# Compaction, recorded by pydantic/pydantic-ai (tests/models/cassettes/test_anthropic/
# test_anthropic_compaction_usage_with_cache_streaming.yaml): the final delta's top-level
# fields describe only the last iteration and zero the 55,096 cache reads.
COMPACTION_ITERATIONS = [
    {
        "input_tokens": 100,
        "output_tokens": 83,
        "cache_read_input_tokens": 55096,
        "cache_creation_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "type": "compaction",
    },
    {
        "input_tokens": 181,
        "output_tokens": 8,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "type": "message",
    },
]


def compaction_stream() -> list[dict[str, Any]]:
    return [
        start_event(
            {
                "input_tokens": 100,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 55096,
                "output_tokens": 7,
            },
            model="claude-sonnet-4-6",
        ),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "compaction", "content": None}},
        delta_event(
            {
                "input_tokens": 181,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 8,
                "iterations": copy.deepcopy(COMPACTION_ITERATIONS),
            }
        ),
        {"type": "message_stop"},
    ]


def test_compaction_stream_bills_the_sum_over_iterations() -> None:
    usage = anthropic.extract(compaction_stream())
    expected_input = sum(inclusive_input(item) for item in COMPACTION_ITERATIONS)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (55_377, 55_096, 91)
    assert usage.input_tokens == expected_input
    assert usage.other_models is None
    price = calc_price(genai_usage(usage), "claude-sonnet-4-6", provider_id="anthropic")
    assert price.total_price == Decimal("0.0187368")  # the total pydantic-ai's test confirms


def test_compaction_in_a_message_body_and_the_beta_sdk_type() -> None:
    body = message(
        {
            "input_tokens": 181,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 8,
            "iterations": COMPACTION_ITERATIONS,
        },
        model="claude-sonnet-4-6",
    )
    usage = anthropic.extract(body)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (55_377, 55_096, 91)
    assert anthropic.extract(BetaMessage.model_validate(body)) == usage


# Advisor tool, recorded by pydantic/pydantic-ai (test_anthropic_advisor_tool.yaml): the
# advisor iteration names its own model and is not part of the top-level totals.
ADVISOR_USAGE = {
    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "input_tokens": 2390,
    "iterations": [
        {
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "input_tokens": 1128,
            "output_tokens": 110,
            "type": "message",
        },
        {
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "input_tokens": 2518,
            "model": "claude-opus-4-8",
            "output_tokens": 22,
            "type": "advisor_message",
        },
        {
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "input_tokens": 1262,
            "output_tokens": 11,
            "type": "message",
        },
    ],
    "output_tokens": 121,
    "output_tokens_details": {"thinking_tokens": 28},
    "server_tool_use": {"web_fetch_requests": 0, "web_search_requests": 0},
    "service_tier": "standard",
}


def test_advisor_iteration_is_billed_at_its_own_model() -> None:
    body = message(ADVISOR_USAGE, model="claude-sonnet-5")
    usage = anthropic.extract(body)
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (2390, 121, 28)
    assert usage.input_tokens == ADVISOR_USAGE["input_tokens"]  # the top level already excludes it
    assert usage.other_models == {
        "claude-opus-4-8": TokenUsage(
            input_tokens=2518, output_tokens=22, total_tokens=2540, cache_read_tokens=0, cache_write_tokens=0
        )
    }
    assert anthropic.extract(BetaMessage.model_validate(body)) == usage


def test_advisor_iteration_in_a_stream_delta() -> None:
    events = [
        start_event({"input_tokens": 1128, "output_tokens": 1}, model="claude-sonnet-5"),
        delta_event({"input_tokens": 2390, "output_tokens": 121, "iterations": ADVISOR_USAGE["iterations"]}),
    ]
    usage = anthropic.extract(events)
    assert (usage.input_tokens, usage.output_tokens) == (2390, 121)
    assert set(usage.other_models) == {"claude-opus-4-8"}


# ---- invariants and malformed input ---------------------------------------------------------
@pytest.mark.parametrize(
    ("usage", "field"),
    [
        (
            {"input_tokens": 5, "output_tokens": 10, "output_tokens_details": {"thinking_tokens": 11}},
            "reasoning_tokens",
        ),
        (
            {
                "input_tokens": 5,
                "output_tokens": 1,
                "cache_creation_input_tokens": 10,
                "cache_creation": {"ephemeral_5m_input_tokens": 8, "ephemeral_1h_input_tokens": 8},
            },
            "cache_creation",
        ),
        ({"input_tokens": -1, "output_tokens": 1}, "input_tokens"),
        ({"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": -5}, "cache_read_input_tokens"),
        (
            {"input_tokens": 1, "output_tokens": 1, "iterations": [{"type": "message", "input_tokens": -2}]},
            "iterations[0].input_tokens",
        ),
    ],
)
def test_counts_that_break_an_invariant_are_rejected(usage: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        anthropic.extract(message(usage))
    assert field in caught.value.field


@pytest.mark.parametrize(
    "response",
    [
        None,
        "",
        "text",
        b"{}",
        3,
        2.5,
        {},
        [],
        [None, 1, "x", {"type": 5}],
        {"usage": None},
        {"usage": "x"},
        {"usage": {"input_tokens": "3", "output_tokens": "4"}},
        {"usage": {"input_tokens": True}},
        {"type": "message_start", "message": "nope"},
        {"type": "message_delta", "usage": [1, 2]},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"usage": {"iterations": "x"}},
        message({"input_tokens": 1.5, "output_tokens": None}),
    ],
)
def test_malformed_input_gives_none(response: Any) -> None:
    assert anthropic.extract(response) is None


def test_cache_counts_without_their_total_are_dropped_not_invented() -> None:
    usage = anthropic.extract(message({"output_tokens": 4, "cache_read_input_tokens": 100}))
    assert usage == TokenUsage(output_tokens=4)


# ---- property: never anything but None, a TokenUsage or a ValidationError ---------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
COUNT = st.none() | st.integers(-3, 5000) | st.floats(-1, 5000) | st.text(max_size=3)
USAGE = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": COUNT,
        "output_tokens": COUNT,
        "cache_read_input_tokens": COUNT,
        "cache_creation_input_tokens": COUNT,
        "cache_creation": st.fixed_dictionaries(
            {}, optional={"ephemeral_5m_input_tokens": COUNT, "ephemeral_1h_input_tokens": COUNT}
        ),
        "output_tokens_details": st.fixed_dictionaries({}, optional={"thinking_tokens": COUNT}),
        "server_tool_use": st.fixed_dictionaries({}, optional={"web_search_requests": COUNT}),
        "iterations": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["message", "compaction", "advisor_message", "other", 3])},
                optional={
                    "model": st.sampled_from(["claude-opus-4-8", "", None]),
                    "input_tokens": COUNT,
                    "output_tokens": COUNT,
                    "cache_read_input_tokens": COUNT,
                },
            ),
            max_size=3,
        ),
    },
)
SHAPED = st.one_of(
    USAGE.map(message),
    st.lists(st.one_of(USAGE.map(start_event), USAGE.map(delta_event), JSON), max_size=5),
    JSON,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SHAPED)
def test_any_input_gives_none_a_usage_or_a_validation_error(response: Any) -> None:
    try:
        result = extract_usage(response, "anthropic")
    except ValidationError:
        return
    if result is not None:
        assert isinstance(result, TokenUsage)
        assert not result.is_empty or result.other_models  # "nothing reported" is None, never zeros


class Broken:
    """A third-party object whose every attribute read fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"broken {name}")


def test_feeding_a_broken_object_neither_raises_nor_counts() -> None:
    state = anthropic.MessageStreamState()
    state.feed(Broken())
    assert state.result() is None
    assert anthropic.extract(Broken()) is None
