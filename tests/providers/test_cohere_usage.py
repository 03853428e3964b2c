"""Usage extraction for Cohere v2 chat and embed (PROVIDERS.md A.9).

No Cohere recording ships with the fixtures, so the cases are built from the documented format;
the numbers are the recording PROVIDERS.md cites (billed 2406/2, processed 2935/4, cached 2928).
"""

from __future__ import annotations

from typing import Any

import pytest
from _openai_strategies import APIS, assert_invariants, json_like
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from tokentrail.core import ValidationError
from tokentrail.core.usage import TOKEN_FIELDS
from tokentrail.providers import extract_usage
from tokentrail.providers.cohere import CohereStreamUsage, extract

try:  # the Cohere SDK is optional: dict cases always run, SDK-object cases when it is installed
    import cohere
    from cohere.v2.types import V2ChatResponse, V2ChatStreamResponse
except ImportError:  # pragma: no cover - depends on the environment
    cohere = None

needs_cohere = pytest.mark.skipif(cohere is None, reason="the cohere SDK is not installed")

BILLED = {"input_tokens": 2406, "output_tokens": 2}
PROCESSED = {"input_tokens": 2935, "output_tokens": 4}
CACHED = 2928
USAGE = {"billed_units": BILLED, "tokens": PROCESSED, "cached_tokens": CACHED}


def chat_body(usage: Any) -> dict[str, Any]:
    return {
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
        "usage": usage,
    }


def stream_events(usage: Any) -> list[dict[str, Any]]:
    return [
        {"type": "message-start", "id": "s1", "delta": {"message": {"role": "assistant", "content": []}}},
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hi"}}}},
        {"type": "content-end", "index": 0},
        {"type": "message-end", "id": "s1", "delta": {"finish_reason": "COMPLETE", "usage": usage}},
    ]


def counts(usage: Any) -> dict[str, int | None] | None:
    return None if usage is None else {name: getattr(usage, name) for name in TOKEN_FIELDS}


EXPECTED = {
    **dict.fromkeys(TOKEN_FIELDS),
    "input_tokens": BILLED["input_tokens"],
    "output_tokens": BILLED["output_tokens"],
    "total_tokens": BILLED["input_tokens"] + BILLED["output_tokens"],
}
EXPECTED_DETAILS = {
    "processed_input_tokens": PROCESSED["input_tokens"],
    "processed_output_tokens": PROCESSED["output_tokens"],
    "cohere_cached_tokens": CACHED,
}


def check_chat(response: Any) -> None:
    for api in (None, "chat"):
        result = extract(response, api)
        assert counts(result) == EXPECTED
        assert result.details == EXPECTED_DETAILS
        # cached (2928) exceeds billed input (2406): it cannot be a cache-read subset
        assert result.cache_read_tokens is None
    assert counts(extract_usage(response, "cohere")) == EXPECTED


def test_billed_units_are_the_counts_and_cached_is_only_a_detail() -> None:
    check_chat(chat_body(USAGE))


@needs_cohere
def test_billed_units_from_sdk_response() -> None:
    sdk = V2ChatResponse.model_validate(chat_body(USAGE))
    assert isinstance(sdk.usage.billed_units.input_tokens, float)  # the SDK types counts as floats
    check_chat(sdk)


def check_stream(events: list[Any]) -> None:
    for stream in (events, tuple(events)):
        assert counts(extract(stream)) == EXPECTED
        assert counts(extract_usage(list(stream), "cohere")) == EXPECTED
        state = CohereStreamUsage()
        for event in stream:
            state.feed(event)
        assert counts(state.result()) == EXPECTED
        assert extract(stream[-1]).details == EXPECTED_DETAILS  # the terminal event alone
    assert extract(events[:-1]) is None  # no message-end: nothing reported


def test_message_end_stream() -> None:
    check_stream(stream_events(USAGE))


@needs_cohere
def test_message_end_stream_sdk_events() -> None:
    adapter = TypeAdapter(V2ChatStreamResponse)
    sdk_events = [adapter.validate_python(event) for event in stream_events(USAGE)]
    assert type(sdk_events[-1]).__name__ == "MessageEndV2ChatStreamResponse"
    check_stream(sdk_events)


def test_v1_meta_and_stream_end() -> None:
    meta = {"api_version": {"version": "1"}, **USAGE}
    body = {"response_id": "r", "text": "Hi", "generation_id": "g", "meta": meta}
    assert counts(extract(body)) == EXPECTED
    events = [
        {"event_type": "stream-start", "generation_id": "g"},
        {"event_type": "text-generation", "text": "Hi"},
        {"event_type": "stream-end", "finish_reason": "COMPLETE", "response": body},
    ]
    assert counts(extract(events)) == EXPECTED


def test_embeddings_bill_input_only() -> None:
    body = {
        "id": "e1",
        "response_type": "embeddings_by_type",
        "embeddings": {"float": [[0.1, 0.2]]},
        "texts": ["hello"],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 14}},
    }
    responses: list[Any] = [body]
    if cohere is not None:
        responses.append(cohere.EmbedByTypeResponse.model_validate(body))
    expected = {**dict.fromkeys(TOKEN_FIELDS), "input_tokens": 14, "output_tokens": 0, "total_tokens": 14}
    for response in responses:
        for api in (None, "embeddings", "embed"):
            assert counts(extract(response, api)) == expected  # embeddings produce no tokens
    assert extract(stream_events(USAGE), "embeddings") is None


def test_openai_compatible_endpoint_falls_back_to_openai_format() -> None:
    body = {"object": "chat.completion", "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
    result = extract_usage(body, "cohere")
    assert (result.input_tokens, result.output_tokens) == (7, 3)


class Exploding:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)


MALFORMED: list[Any] = [
    None,
    "",
    "message-end",
    7,
    [],
    ["x", None, 3],
    {},
    chat_body(None),
    chat_body([2406, 2]),
    chat_body("2406"),
    chat_body({"billed_units": {"input_tokens": "2406", "output_tokens": 2}}),
    chat_body({"billed_units": [1, 2], "tokens": PROCESSED, "cached_tokens": CACHED}),
    chat_body({"tokens": PROCESSED, "cached_tokens": CACHED}),  # processed only is not what is billed
    chat_body({"billed_units": {"input_tokens": {"n": 1}, "output_tokens": True}}),
    stream_events({"billed_units": None}),
    [{"type": "message-end", "delta": "garbage"}],
    [{"type": ["unhashable"]}],
    Exploding(),
    [Exploding()],
]


@pytest.mark.parametrize("value", MALFORMED, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("api", APIS)
def test_malformed_input_is_unknown(value: Any, api: str | None) -> None:
    assert extract(value, api) is None


@pytest.mark.parametrize("api", [None, "chat"])
def test_chat_without_billed_output_is_unknown(api: str | None) -> None:
    # Chat bills both directions; half a report is not priced. (Embed bills input only.)
    body = chat_body({"billed_units": {"input_tokens": 2406}})
    assert extract(body, api) is None
    assert extract(body, "embed").input_tokens == 2406


def test_malformed_details_are_dropped() -> None:
    usage = {"billed_units": BILLED, "tokens": {"input_tokens": "5", "output_tokens": "4"}, "cached_tokens": 1.5}
    result = extract(chat_body(usage))
    assert counts(result) == EXPECTED
    assert result.details is None


def test_stream_state_is_slotted_and_never_raises() -> None:
    state = CohereStreamUsage()
    assert not hasattr(state, "__dict__")
    for event in (None, 1, "x", Exploding(), {"type": {}}, {"type": "message-end"}):
        state.feed(event)
    assert state.result() is None


@settings(max_examples=400, deadline=None)
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


def test_a_negative_billed_count_is_rejected_naming_it() -> None:
    with pytest.raises(ValidationError) as info:
        extract(chat_body({"billed_units": {"input_tokens": -1, "output_tokens": 2}}))
    assert info.value.field == "input_tokens"
