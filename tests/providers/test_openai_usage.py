"""Usage extraction for OpenAI and OpenAI-compatible providers (PROVIDERS.md A.1-A.4, A.8).

Recorded cassettes are replayed as parsed JSON and as the openai SDK objects the client
returns; the documented formats that no recording covers (cache writes, reasoning, audio,
Azure, DeepSeek, Mistral, xAI) are built in the tests from the providers' documented shapes.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from _openai_cassettes import cassette_names, load, to_sdk
from _openai_strategies import APIS, assert_invariants, json_like
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.core.usage import TOKEN_FIELDS
from tokentrail.providers import extract_usage
from tokentrail.providers.openai import ChatStreamUsage, ResponsesStreamUsage, extract

CHAT_BODIES = [
    "test_async_chat_completion_metrics",
    "test_chat_completion_extra_params",
    "test_chat_completion_metrics",
    "test_chat_completion_multiple_choices",
    "test_chat_completion_tool_calls_with_content",
    "test_chat_completion_with_content",
]
CHAT_STREAMS = [
    "test_async_chat_completion_streaming",
    "test_chat_completion_multiple_tools_streaming_with_content",
    "test_chat_completion_streaming",
]
CHAT_STREAMS_WITHOUT_USAGE = ["test_chat_completion_streaming_not_complete"]
EMBEDDINGS = ["test_embeddings_token_metrics", "test_embeddings_with_dimensions"]
RESPONSES = [
    "test_responses_create_basic[content_mode0]",
    "test_responses_create_aggregates_cache_tokens[content_mode0]",
    "test_responses_create_reports_reasoning_tokens[content_mode0]",
]
RESPONSES_STREAMS = [
    "test_responses_create_streaming[content_mode0]",
    "test_responses_create_streaming_aggregates_cache_tokens[content_mode0]",
]
ERRORS = [
    "test_chat_completion_404",
    "test_embeddings_model_not_found",
    "test_responses_create_api_error[content_mode0]",
]


def counts(usage: TokenUsage | None) -> dict[str, int | None] | None:
    return None if usage is None else {name: getattr(usage, name) for name in TOKEN_FIELDS}


def expected_chat(usage: dict[str, Any]) -> dict[str, int | None]:
    """A.1 applied to a recorded usage block: every count is already inclusive."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
        "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        "cache_read_tokens": prompt_details.get("cached_tokens"),
        "cache_write_tokens": prompt_details.get("cache_write_tokens"),
        "reasoning_tokens": completion_details.get("reasoning_tokens"),
        "audio_input_tokens": prompt_details.get("audio_tokens"),
        "audio_output_tokens": completion_details.get("audio_tokens"),
    }


def expected_responses(usage: dict[str, Any]) -> dict[str, int | None]:
    """A.2 applied to a recorded usage block."""
    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return {
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        "cache_read_tokens": input_details.get("cached_tokens"),
        "cache_write_tokens": input_details.get("cache_write_tokens"),
        "reasoning_tokens": output_details.get("reasoning_tokens"),
        "audio_input_tokens": None,
        "audio_output_tokens": None,
    }


def feed_all(state: ChatStreamUsage | ResponsesStreamUsage, chunks: list[Any]) -> TokenUsage | None:
    for chunk in chunks:
        state.feed(chunk)
    return state.result()


# ---- recorded cassettes ---------------------------------------------------------------------
def test_every_cassette_is_classified() -> None:
    classified = CHAT_BODIES + CHAT_STREAMS + CHAT_STREAMS_WITHOUT_USAGE + EMBEDDINGS + RESPONSES
    classified += RESPONSES_STREAMS + ERRORS
    assert sorted(classified) == cassette_names()


@pytest.mark.parametrize("name", CHAT_BODIES)
def test_recorded_chat_completion(name: str) -> None:
    for recorded in load(name):
        body = recorded.body
        assert body["object"] == "chat.completion"
        expected = expected_chat(body["usage"])
        assert expected["total_tokens"] == body["usage"]["total_tokens"]
        sdk = to_sdk("chat", body)
        assert isinstance(sdk, ChatCompletion)
        for response in (body, sdk):
            for api in (None, "chat.completions"):
                assert counts(extract(response, api)) == expected
            assert counts(extract_usage(response, "openai")) == expected
            assert counts(extract_usage(response, "azure")) == expected
        # a bare usage block (e.g. `completion.usage`) stands for itself
        assert counts(extract(sdk.usage)) == counts(extract(body["usage"])) == expected
        # the recordings report zero audio/prediction sub-counts, which price nothing
        assert extract(body).details is None


def test_multiple_choices_bill_every_choice() -> None:
    (recorded,) = load("test_chat_completion_multiple_choices")
    assert recorded.request["n"] == len(recorded.body["choices"]) == 2
    assert extract(recorded.body).output_tokens == recorded.body["usage"]["completion_tokens"]


@pytest.mark.parametrize("name", CHAT_STREAMS)
def test_recorded_chat_stream(name: str) -> None:
    (recorded,) = load(name)
    chunks = recorded.body
    assert recorded.request["stream_options"] == {"include_usage": True}
    # As recorded: usage only on the final chunk, which has no choices (A.1).
    with_usage = [i for i, chunk in enumerate(chunks) if chunk.get("usage") is not None]
    assert with_usage == [len(chunks) - 1]
    assert chunks[-1]["choices"] == []
    expected = expected_chat(chunks[-1]["usage"])

    sdk_chunks = [to_sdk("chunk", chunk) for chunk in chunks]
    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in sdk_chunks)
    for stream in (chunks, sdk_chunks, tuple(sdk_chunks)):
        assert counts(extract(stream)) == expected
        assert counts(extract(stream, "chat.completions")) == expected
        assert counts(feed_all(ChatStreamUsage(), list(stream))) == expected
        assert counts(extract_usage(list(stream), "openai")) == expected
    # Until the usage chunk arrives nothing is known.
    assert feed_all(ChatStreamUsage(), chunks[:-1]) is None


@pytest.mark.parametrize("name", CHAT_STREAMS_WITHOUT_USAGE)
def test_recorded_stream_without_include_usage_is_unknown(name: str) -> None:
    (recorded,) = load(name)
    assert "stream_options" not in recorded.request
    assert recorded.body and all("usage" not in chunk for chunk in recorded.body)
    sdk_chunks = [to_sdk("chunk", chunk) for chunk in recorded.body]
    for stream in (recorded.body, sdk_chunks):
        assert extract(stream) is None
        assert extract(stream, "chat.completions") is None
        assert feed_all(ChatStreamUsage(), stream) is None


@pytest.mark.parametrize("name", EMBEDDINGS)
def test_recorded_embeddings(name: str) -> None:
    (recorded,) = load(name)
    body = recorded.body
    assert body["object"] == "list"
    prompt = body["usage"]["prompt_tokens"]
    sdk = to_sdk("embeddings", body)
    for response in (body, sdk):
        for api in (None, "embeddings"):
            usage = extract(response, api)
            assert counts(usage) == {
                **dict.fromkeys(TOKEN_FIELDS),
                "input_tokens": prompt,
                "output_tokens": 0,  # embeddings produce no tokens
                "total_tokens": body["usage"]["total_tokens"],
            }
        assert extract_usage(response, "openai", "embeddings").input_tokens == prompt


@pytest.mark.parametrize("name", RESPONSES)
def test_recorded_responses(name: str) -> None:
    (recorded,) = load(name)
    body = recorded.body
    assert body["object"] == "response"
    expected = expected_responses(body["usage"])
    assert expected["total_tokens"] == body["usage"]["total_tokens"]
    sdk = to_sdk("response", body)
    assert isinstance(sdk, Response)
    for response in (body, sdk):
        for api in (None, "responses"):
            assert counts(extract(response, api)) == expected
        assert counts(extract_usage(response, "openai", "responses")) == expected
    assert counts(extract(sdk.usage)) == counts(extract(body["usage"], "responses")) == expected


def test_recorded_reasoning_tokens_are_inside_output() -> None:
    (recorded,) = load("test_responses_create_reports_reasoning_tokens[content_mode0]")
    usage = recorded.body["usage"]
    reasoning = usage["output_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0
    result = extract(recorded.body)
    assert result.reasoning_tokens == reasoning
    assert result.output_tokens == usage["output_tokens"]  # not output + reasoning


@pytest.mark.parametrize("name", RESPONSES_STREAMS)
def test_recorded_responses_stream(name: str) -> None:
    (recorded,) = load(name)
    events = recorded.body
    by_type = {event["type"]: event for event in events}
    assert by_type["response.created"]["response"]["usage"] is None
    assert by_type["response.in_progress"]["response"]["usage"] is None
    expected = expected_responses(by_type["response.completed"]["response"]["usage"])

    sdk_events = [to_sdk("event", event) for event in events]
    assert type(sdk_events[-1]).__name__ == "ResponseCompletedEvent"
    for stream in (events, sdk_events):
        assert counts(extract(stream)) == expected
        assert counts(extract(stream, "responses")) == expected
        assert counts(feed_all(ResponsesStreamUsage(), stream)) == expected
        assert counts(extract_usage(stream, "openai")) == expected
        # the terminal event alone, as a single object
        assert counts(extract(stream[-1])) == expected
    # Without the terminal event the stream reported nothing.
    assert feed_all(ResponsesStreamUsage(), events[:-1]) is None


@pytest.mark.parametrize("name", ERRORS)
def test_recorded_errors_report_no_usage(name: str) -> None:
    (recorded,) = load(name)
    assert recorded.status >= 400 and "error" in recorded.body
    for api in (None, "chat.completions", "responses", "embeddings"):
        assert extract(recorded.body, api) is None


# ---- documented formats ---------------------------------------------------------------------
def chat_body(usage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-doc",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-5.6",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": usage,
        **extra,
    }


@pytest.mark.parametrize(("read", "written"), [(0, 4012), (4012, 0), (12, 4000)])
def test_cache_reads_and_writes_are_inside_prompt(read: int, written: int) -> None:
    # A.1: 4020 prompt tokens, of which 4012 were written or read.
    usage = {
        "prompt_tokens": 4020,
        "completion_tokens": 9,
        "total_tokens": 4029,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
    }
    for response in (chat_body(usage), to_sdk("chat", chat_body(usage))):
        result = extract(response)
        assert (result.input_tokens, result.cache_read_tokens, result.cache_write_tokens) == (4020, read, written)
        assert result.uncached_input_tokens == 4020 - 4012
        assert result.total_tokens == 4029


def test_o3_mini_reasoning_is_inside_completion() -> None:
    usage = {
        "prompt_tokens": 71,
        "completion_tokens": 2320,
        "total_tokens": 2391,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 1792,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    for response in (chat_body(usage, model="o3-mini-2025-01-31"), to_sdk("chat", chat_body(usage))):
        result = extract(response)
        assert (result.output_tokens, result.reasoning_tokens, result.total_tokens) == (2320, 1792, 2391)


def test_audio_image_and_other_sub_counts() -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 80,
        "total_tokens": 200,
        "prompt_tokens_details": {
            "cached_tokens": 30,
            "audio_tokens": 50,
            "image_tokens": 40,
            "text_tokens": 30,
            "cached_tokens_details": {"audio_tokens": 10, "text_tokens": 20},
        },
        "completion_tokens_details": {
            "audio_tokens": 60,
            "text_tokens": 20,
            "reasoning_tokens": 0,
            "accepted_prediction_tokens": 3,
            "rejected_prediction_tokens": 4,
        },
    }
    for response in (chat_body(usage, model="gpt-4o-audio-preview"), to_sdk("chat", chat_body(usage))):
        result = extract(response)
        assert (result.audio_input_tokens, result.audio_output_tokens) == (50, 60)
        assert result.cache_read_tokens == 30
        assert result.reasoning_tokens == 0
        assert result.details == {
            "input_image_tokens": 40,
            "input_text_tokens": 30,
            "cache_audio_read_tokens": 10,
            "cache_text_read_tokens": 20,
            "output_text_tokens": 20,
            "accepted_prediction_tokens": 3,
            "rejected_prediction_tokens": 4,
        }


def test_legacy_completions_use_the_chat_rule() -> None:
    body = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": "hi", "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    for response in (body, to_sdk("completion", body)):
        for api in (None, "completions"):
            assert counts(extract(response, api)) == {**dict.fromkeys(TOKEN_FIELDS), **expected_chat(body["usage"])}


def azure_stream(include_usage: bool) -> list[dict[str, Any]]:
    """A.4: the first chunk has empty choices, id and model and only prompt_filter_results."""
    filters = {"hate": {"filtered": False, "severity": "safe"}}
    chunks: list[dict[str, Any]] = [
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}],
        }
    ]
    for text, finish in (("Hel", None), ("lo", None), ("", "stop")):
        chunks.append(
            {
                "id": "chatcmpl-az",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4.1-2025-04-14",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": text} if text else {},
                        "finish_reason": finish,
                        "content_filter_results": filters if text else {},
                    }
                ],
                "usage": None,
            }
        )
    if include_usage:
        chunks.append(
            {
                "id": "chatcmpl-az",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4.1-2025-04-14",
                "choices": [],
                "usage": {
                    "prompt_tokens": 19,
                    "completion_tokens": 2,
                    "total_tokens": 21,
                    "prompt_tokens_details": {"cached_tokens": 0},
                },
            }
        )
    return chunks


def test_azure_stream_with_empty_first_chunk() -> None:
    chunks = azure_stream(include_usage=True)
    expected = {**dict.fromkeys(TOKEN_FIELDS), **expected_chat(chunks[-1]["usage"])}
    sdk_chunks = [to_sdk("azure_chunk", chunk) for chunk in chunks]
    for stream in (chunks, sdk_chunks):
        assert counts(extract(stream)) == expected
        assert counts(extract_usage(stream, "azure_openai")) == expected
    assert extract(chunks[:1]) is None


def test_azure_stream_without_include_usage_is_unknown() -> None:
    chunks = azure_stream(include_usage=False)
    assert extract(chunks) is None
    assert extract([to_sdk("azure_chunk", chunk) for chunk in chunks], "chat.completions") is None


def test_last_non_null_usage_wins() -> None:
    # Servers that repeat running usage (e.g. vLLM continuous usage stats) end with the final count.
    running = [{"usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}} for n in (1, 2, 3)]
    assert extract([*running, {"usage": None}, {"choices": []}]).output_tokens == 3


def test_deepseek_hit_and_miss() -> None:
    usage = {
        "prompt_tokens": 1950,
        "completion_tokens": 300,
        "total_tokens": 2250,
        "prompt_cache_hit_tokens": 1920,
        "prompt_cache_miss_tokens": 30,
        "completion_tokens_details": {"reasoning_tokens": 250},
    }
    assert usage["prompt_tokens"] == usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
    body = chat_body(usage, model="deepseek-reasoner")
    sdk = to_sdk("chat", body)  # the openai SDK keeps DeepSeek's extra fields
    for response in (body, sdk):
        result = extract_usage(response, "deepseek")
        assert (result.input_tokens, result.cache_read_tokens, result.uncached_input_tokens) == (1950, 1920, 30)
        assert (result.output_tokens, result.reasoning_tokens) == (300, 250)
    # hit + miss stand in for a missing prompt_tokens
    without_prompt = {k: v for k, v in usage.items() if k != "prompt_tokens"}
    assert extract({"usage": without_prompt}).input_tokens == 1950


def test_mistral_cached_tokens_in_either_field() -> None:
    base = {"prompt_tokens": 2100, "completion_tokens": 40, "total_tokens": 2140}
    current = {**base, "prompt_tokens_details": {"cached_tokens": 2048}}
    legacy = {**base, "num_cached_tokens": 2048}
    for usage in (current, legacy):
        body = chat_body(usage, model="mistral-large-latest")
        for response in (body, to_sdk("chat", body)):
            result = extract_usage(response, "mistral")
            assert (result.input_tokens, result.cache_read_tokens, result.output_tokens) == (2100, 2048, 40)


def test_mistral_stream_usage_on_last_content_chunk() -> None:
    def chunk(text: str, finish: str | None, usage: dict[str, int] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "m1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "mistral-small-latest",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
        }
        if usage is not None:
            out["usage"] = usage
        return out

    final_usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, "num_cached_tokens": 0}
    chunks = [chunk("He", None, None), chunk("llo", None, None), chunk("!", "stop", final_usage)]
    assert chunks[-1]["choices"]  # not an empty-choices usage chunk
    for stream in (chunks, [to_sdk("chunk", c) for c in chunks]):
        result = extract_usage(stream, "mistralai")
        assert (result.input_tokens, result.output_tokens, result.cache_read_tokens) == (10, 3, 0)


def test_xai_reasoning_reported_outside_completion() -> None:
    # xAI: reasoning is counted separately from completion_tokens but inside total_tokens
    # (xAI example: 32 prompt + 9 completion + 94 reasoning = 135 total).
    usage = {
        "prompt_tokens": 32,
        "completion_tokens": 9,
        "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 6},
        "completion_tokens_details": {"reasoning_tokens": 94},
    }
    for response in (chat_body(usage, model="grok-3-mini"), to_sdk("chat", chat_body(usage))):
        result = extract_usage(response, "x_ai")
        assert (result.output_tokens, result.reasoning_tokens, result.total_tokens) == (9 + 94, 94, 135)


def responses_body(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "resp_doc",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "o4-mini",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


DOC_RESPONSES_USAGE = {
    "input_tokens": 1493,
    "input_tokens_details": {"cached_tokens": 1280, "cache_write_tokens": 0},
    "output_tokens": 125,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 1618,
}


def test_responses_documented_example() -> None:
    body = responses_body(DOC_RESPONSES_USAGE)
    sdk = Response.model_validate(body)  # current SDK: every field present, strict validation passes
    for response in (body, sdk):
        result = extract(response)
        assert counts(result) == {
            **dict.fromkeys(TOKEN_FIELDS),
            "input_tokens": 1493,
            "output_tokens": 125,
            "total_tokens": 1618,
            "cache_read_tokens": 1280,
            "cache_write_tokens": 0,
            "reasoning_tokens": 64,
        }
        assert result.uncached_input_tokens == 1493 - 1280


def test_responses_cache_write_retention_split() -> None:
    usage = copy.deepcopy(DOC_RESPONSES_USAGE)
    usage["input_tokens_details"] = {
        "cached_tokens": 0,
        "cache_write_tokens": 1280,
        "cache_write_tokens_details": {"ttl_30m_tokens": 1024, "ttl_12h_tokens": 256},
    }
    result = extract(Response.model_validate(responses_body(usage)))
    assert result.cache_write_tokens == 1280
    assert result.details == {"cache_write_30m_tokens": 1024, "cache_write_12h_tokens": 256}


@pytest.mark.parametrize("terminal", ["response.completed", "response.incomplete", "response.failed"])
def test_responses_stream_terminal_events(terminal: str) -> None:
    def event(kind: str, usage: dict[str, Any] | None, seq: int) -> dict[str, Any]:
        return {"type": kind, "sequence_number": seq, "response": {**responses_body(usage), "status": "in_progress"}}

    events = [
        event("response.created", None, 0),
        event("response.in_progress", None, 1),
        {"type": "response.output_text.delta", "delta": "hi", "item_id": "m", "output_index": 0, "content_index": 0,
         "sequence_number": 2, "logprobs": []},
        event(terminal, DOC_RESPONSES_USAGE, 3),
    ]  # fmt: skip
    for stream in (events, [to_sdk("event", e) for e in events]):
        result = extract(stream)
        assert (result.input_tokens, result.cache_read_tokens, result.output_tokens) == (1493, 1280, 125)
    assert extract(events[:3]) is None


# ---- malformed input and invariants ------------------------------------------------------------
class Exploding:
    """A third-party object whose every attribute access fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


MALFORMED: list[Any] = [
    None,
    "",
    "usage",
    b"{}",
    42,
    3.5,
    [],
    [None, "x", 5, []],
    {},
    {"usage": None},
    {"usage": [12, 5, 17]},
    {"usage": "12 tokens"},
    {"usage": {"prompt_tokens": "12", "completion_tokens": "5"}},
    {"usage": {"prompt_tokens": True, "completion_tokens": 5}},
    {"usage": {"prompt_tokens": 1.5, "completion_tokens": 5}},
    {"usage": {"prompt_tokens": {"value": 12}, "completion_tokens": [5]}},
    {"usage": {"completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 3}}},
    {"object": "response", "usage": {"input_tokens": [1], "output_tokens": {"a": 2}}},
    {"object": "list", "usage": {"prompt_tokens": "8"}},
    {"object": {"nested": ["garbage"]}, "usage": {"usage": {"usage": None}}},
    {"type": "response.completed", "response": "garbage"},
    {"type": ["unhashable"], "response": {"usage": {"input_tokens": 1, "output_tokens": 1}}},
    [{"type": "response.completed", "response": None}, {"usage": 7}],
    Exploding(),
    [Exploding(), Exploding()],
]


@pytest.mark.parametrize("value", MALFORMED, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("api", APIS)
def test_malformed_input_is_unknown(value: Any, api: str | None) -> None:
    assert extract(value, api) is None


NEGATIVE = [
    ({"usage": {"prompt_tokens": -1, "completion_tokens": 5, "total_tokens": 4}}, "prompt_tokens"),
    ({"object": "response", "usage": {"input_tokens": -3, "output_tokens": 2}}, "input_tokens"),
    (
        {"usage": {"prompt_tokens": 9, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": -2}}},
        "cached_tokens",
    ),
]


@pytest.mark.parametrize(("value", "field"), NEGATIVE)
def test_a_negative_count_is_rejected_naming_it(value: Any, field: str) -> None:
    # A negative count was reported, so it is not "unknown": it breaks the invariants (SPEC §1).
    with pytest.raises(ValidationError) as info:
        extract(value)
    assert info.value.field == field


@pytest.mark.parametrize("api", [None, "chat.completions", "completions", "responses"])
def test_a_missing_output_count_means_nothing_usable(api: str | None) -> None:
    # The SDK declares both totals required; a block without one is not priced half-known.
    # (Embeddings have no output count: there prompt_tokens alone is complete.)
    assert extract({"usage": {"prompt_tokens": 12}}, api) is None
    assert extract({"usage": {"input_tokens": 12}}, api) is None
    assert extract({"usage": {"prompt_tokens": 12}}, "embeddings").input_tokens == 12


def test_malformed_sub_counts_are_ignored() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_tokens_details": "garbage",
        "completion_tokens_details": {"reasoning_tokens": "2", "audio_tokens": "x"},
    }
    result = extract({"usage": usage})
    assert counts(result) == {**dict.fromkeys(TOKEN_FIELDS), "input_tokens": 10, "output_tokens": 5, "total_tokens": 15}


def test_stream_feed_never_raises() -> None:
    for state in (ChatStreamUsage(), ResponsesStreamUsage()):
        for chunk in (None, 1, "x", [], Exploding(), {"type": {}}, {"usage": None}):
            state.feed(chunk)
        assert state.result() is None


@pytest.mark.parametrize(
    "response",
    [
        chat_body({"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 11}}),
        chat_body({"prompt_tokens": 10, "completion_tokens": 5,
                   "prompt_tokens_details": {"cached_tokens": 6, "cache_write_tokens": 6}}),
        chat_body({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                   "completion_tokens_details": {"reasoning_tokens": 6}}),
        chat_body({"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"audio_tokens": 11}}),
        {"usage": {"prompt_tokens": 10, "completion_tokens": 5, "prompt_cache_hit_tokens": 12}},
        responses_body({"input_tokens": 10, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 11}}),
        [{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                   "prompt_tokens_details": {"cached_tokens": 2}}}],
    ],
)  # fmt: skip
def test_reported_numbers_that_break_invariants_are_rejected(response: Any) -> None:
    with pytest.raises(ValidationError):
        extract(response)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_like, api=st.sampled_from(APIS), as_stream=st.booleans())
def test_property_extract_is_total(value: Any, api: str | None, as_stream: bool) -> None:
    """Any JSON-like input: None, a usage that satisfies the invariants, or ValidationError."""
    if as_stream and not isinstance(value, list):
        value = [value]
    try:
        result = extract(value, api)
    except ValidationError:
        return
    if result is not None:
        assert_invariants(result)


@settings(max_examples=300, deadline=None)
@given(
    prompt=st.integers(0, 50),
    completion=st.integers(0, 50),
    cached=st.none() | st.integers(0, 60),
    written=st.none() | st.integers(0, 60),
    reasoning=st.none() | st.integers(0, 60),
    add_total=st.booleans(),
    responses=st.booleans(),
)
def test_property_well_formed_usage(
    prompt: int,
    completion: int,
    cached: int | None,
    written: int | None,
    reasoning: int | None,
    add_total: bool,
    responses: bool,
) -> None:
    """Well-formed reports are either kept exactly (input/cache counts unchanged) or rejected."""
    if responses:
        usage: dict[str, Any] = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens_details": {"reasoning_tokens": reasoning},
        }
        body = responses_body(usage)
    else:
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        body = chat_body(usage)
    if add_total:
        usage["total_tokens"] = prompt + completion
    try:
        result = extract(body)
    except ValidationError:
        assert (cached or 0) + (written or 0) > prompt or (reasoning or 0) > completion
        return
    assert_invariants(result)
    assert (result.input_tokens, result.output_tokens) == (prompt, completion)
    assert result.cache_read_tokens == cached
    assert result.cache_write_tokens == written
    assert result.reasoning_tokens == reasoning


# ---- stream state cost -------------------------------------------------------------------------
def test_stream_states_are_slotted() -> None:
    for state in (ChatStreamUsage(), ResponsesStreamUsage()):
        assert not hasattr(state, "__dict__")


def test_feed_is_cheap_per_chunk() -> None:
    """`feed` runs on every streamed chunk; the target is well under 0.5 us. The bound here is
    loose (2 us) so a busy test machine cannot make it flaky, yet catches parsing per chunk."""
    (recorded,) = load("test_chat_completion_multiple_tools_streaming_with_content")
    content_chunks = recorded.body[:-1]
    sdk_chunks = [to_sdk("chunk", chunk) for chunk in content_chunks]
    (responses,) = load("test_responses_create_streaming[content_mode0]")
    events = [to_sdk("event", event) for event in responses.body[2:-1]]
    for state, chunks in (
        (ChatStreamUsage(), content_chunks),
        (ChatStreamUsage(), sdk_chunks),
        (ResponsesStreamUsage(), events),
    ):
        feed = state.feed
        batch = chunks * (2000 // len(chunks) + 1)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for chunk in batch:
                feed(chunk)
            best = min(best, (time.perf_counter() - start) / len(batch))
        assert best < 2e-6, f"{type(state).__name__}.feed took {best * 1e9:.0f} ns per chunk"
        assert state.result() is None
