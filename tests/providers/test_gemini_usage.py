"""Gemini / Vertex AI usage (PROVIDERS.md A.6): recorded responses, SDK objects, documented cases."""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

import pytest
from _cassette_replay import GOOGLE_GENAI, VERTEXAI, load, parse_sse, replay
from genai_prices import Usage, calc_price
from google import genai
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers import extract_usage, gemini

NON_STREAMING = GOOGLE_GENAI / "test_non_streaming[logcontent-gemini-2.5-flash-vertexaiapi-sync-default].yaml"
STREAMING = GOOGLE_GENAI / "test_streaming[logcontent-gemini-2.5-flash-vertexaiapi-sync-default].yaml"
VERTEX_ENUM_INT = [VERTEXAI / "test_generate_content.yaml", VERTEXAI / "test_function_call_choice.yaml"]


def expected(metadata: dict[str, Any]) -> tuple[int, int, int | None]:
    """(input, output, reasoning) by the A.6 rule from a recorded usageMetadata's own fields."""
    prompt = metadata.get("promptTokenCount", 0) + metadata.get("toolUsePromptTokenCount", 0)
    output = metadata.get("candidatesTokenCount", 0) + metadata.get("thoughtsTokenCount", 0)
    return prompt, output, metadata.get("thoughtsTokenCount")


def genai_usage(usage: TokenUsage) -> Usage:
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        input_audio_tokens=usage.audio_input_tokens,
        output_audio_tokens=usage.audio_output_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
        **dict(usage.details or {}),
    )


# ---- recorded responses ---------------------------------------------------------------------
@pytest.mark.parametrize("path", [NON_STREAMING, *VERTEX_ENUM_INT], ids=lambda p: p.stem)
def test_recorded_response_follows_the_rule(path: Any) -> None:
    body = load(path)[0].json
    metadata = body["usageMetadata"]
    # every recording satisfies total = prompt + candidates + tool-use prompt + thoughts
    assert metadata["totalTokenCount"] == sum(expected(metadata)[:2])
    usage = gemini.extract(body)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == expected(metadata)
    assert usage.total_tokens == metadata["totalTokenCount"]
    assert usage.output_tokens > metadata["candidatesTokenCount"]  # thoughts were added
    assert usage.details["input_text_tokens"] == metadata["promptTokenCount"]  # Vertex sends modality 1 = TEXT
    assert extract_usage(body, "vertex") == usage
    assert extract_usage(body, "gemini", "generateContent") == usage


def test_recorded_response_as_the_sdk_type() -> None:
    body = load(NON_STREAMING)[0].json
    response = types.GenerateContentResponse.model_validate(body)
    assert gemini.extract(response) == gemini.extract(body)
    assert gemini.extract(response.usage_metadata) == gemini.extract(body)


def test_recorded_sse_stream_takes_the_last_running_total() -> None:
    interaction = load(STREAMING)[0]
    assert "\r\n\r\n" in interaction.body  # Gemini separates SSE events with CRLF
    chunks = parse_sse(interaction.body)
    with_counts = [chunk for chunk in chunks if "totalTokenCount" in chunk["usageMetadata"]]
    assert len(chunks) > 1 and all("usageMetadata" in chunk for chunk in chunks)
    usage = gemini.extract(chunks)
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == expected(
        with_counts[-1]["usageMetadata"]
    )
    sdk_chunks = [types.GenerateContentResponse.model_validate(chunk) for chunk in chunks]
    state = gemini.GenerateContentStreamState()
    for chunk in sdk_chunks:
        state.feed(chunk)
    assert state.result() == usage
    assert extract_usage(chunks, "gemini", "streamGenerateContent") == usage


def test_recorded_error_has_no_usage() -> None:
    interaction = load(VERTEXAI / "test_generate_content_invalid_temperature.yaml")[0]
    assert interaction.status == 400
    assert gemini.extract(interaction.json) is None


# ---- the real SDK over loopback -------------------------------------------------------------
def client(base_url: str) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=base_url))


def test_sdk_generate_content_replayed() -> None:
    interactions = load(NON_STREAMING)
    with replay(interactions) as server:
        sdk = client(server.base_url)  # keep the client alive: it closes its transport when collected
        response = sdk.models.generate_content(model="gemini-2.5-flash", contents="Poem")
    assert server.requests[0][1].endswith(":generateContent")
    assert isinstance(response, types.GenerateContentResponse)
    assert gemini.extract(response) == gemini.extract(interactions[0].json)


def test_sdk_generate_content_stream_replayed() -> None:
    interactions = load(STREAMING)
    state = gemini.GenerateContentStreamState()
    with replay(interactions) as server:
        sdk = client(server.base_url)
        chunks = list(sdk.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    for chunk in chunks:
        state.feed(chunk)
    assert len(chunks) == len(parse_sse(interactions[0].body))
    assert state.result() == gemini.extract(parse_sse(interactions[0].body))
    assert gemini.extract(chunks) == state.result()


# ---- documented cases -----------------------------------------------------------------------
def test_prompt_count_includes_the_cached_content() -> None:
    body = {
        "usageMetadata": {
            "promptTokenCount": 3520,
            "cachedContentTokenCount": 3512,
            "candidatesTokenCount": 10,
            "totalTokenCount": 3530,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3520}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 3512}],
        }
    }
    usage = gemini.extract(body)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.uncached_input_tokens) == (3520, 3512, 8)
    assert usage.details == {"input_text_tokens": 3520, "cache_text_read_tokens": 3512}
    sdk = types.GenerateContentResponseUsageMetadata.model_validate(body["usageMetadata"])
    assert gemini.extract(types.GenerateContentResponse(usage_metadata=sdk)) == usage


def test_thoughts_are_added_to_output() -> None:
    usage = gemini.extract(
        {
            "usage_metadata": {
                "prompt_token_count": 5,
                "candidates_token_count": 5,
                "thoughts_token_count": 294,
                "total_token_count": 304,
            }
        }
    )
    assert (usage.output_tokens, usage.reasoning_tokens, usage.total_tokens) == (299, 294, 304)


def test_thoughts_without_candidates_still_count() -> None:
    # proto3 JSON omits zero fields: a response cut off while thinking has no candidates count
    usage = gemini.extract(
        {"usageMetadata": {"promptTokenCount": 12, "thoughtsTokenCount": 100, "totalTokenCount": 112}}
    )
    assert (usage.output_tokens, usage.reasoning_tokens) == (100, 100)


def test_tool_use_prompt_tokens_are_added_to_input() -> None:
    metadata = {
        "promptTokenCount": 257,
        "toolUsePromptTokenCount": 1732,
        "candidatesTokenCount": 120,
        "totalTokenCount": 2109,
        "toolUsePromptTokensDetails": [{"modality": "TEXT", "tokenCount": 1732}],
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 257}],
    }
    usage = gemini.extract({"usageMetadata": metadata})
    assert usage.input_tokens == 257 + 1732 == metadata["totalTokenCount"] - metadata["candidatesTokenCount"]
    assert usage.details["input_tool_tokens"] == 1732
    assert usage.details["input_text_tokens"] == 257 + 1732
    assert usage.details["input_text_tool_tokens"] == 1732


def test_audio_and_image_modalities() -> None:
    metadata = {
        "promptTokenCount": 420,
        "candidatesTokenCount": 30,
        "cachedContentTokenCount": 300,
        "totalTokenCount": 450,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 400}, {"modality": "TEXT", "tokenCount": 20}],
        "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 300}],
        "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 25}, {"modality": "IMAGE", "tokenCount": 5}],
    }
    usage = gemini.extract({"usageMetadata": metadata})
    assert (usage.audio_input_tokens, usage.audio_output_tokens) == (400, 25)
    assert usage.details == {"input_text_tokens": 20, "cache_audio_read_tokens": 300, "output_image_tokens": 5}
    sdk = types.GenerateContentResponse.model_validate({"usageMetadata": metadata})
    assert sdk.usage_metadata.prompt_tokens_details[0].modality == types.MediaModality.AUDIO
    assert gemini.extract(sdk) == usage


def test_audio_input_is_priced_at_the_audio_rate() -> None:
    usage = gemini.extract(
        {
            "usageMetadata": {
                "promptTokenCount": 420,
                "candidatesTokenCount": 10,
                "promptTokensDetails": [
                    {"modality": "AUDIO", "tokenCount": 400},
                    {"modality": "TEXT", "tokenCount": 20},
                ],
            }
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every detail key must be a genai-prices usage key
        price = calc_price(genai_usage(usage), "gemini-2.5-flash", provider_id="google")
    rates = price.model_price
    assert rates.input_audio_mtok > rates.input_mtok  # $1/M audio vs $0.30/M text on 2.5 Flash
    assert price.total_price == (
        400 * rates.input_audio_mtok + 20 * rates.input_mtok + 10 * rates.output_mtok
    ) / Decimal(1_000_000)


def test_vertex_integer_modalities() -> None:
    usage = gemini.extract(
        {
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 1,
                "promptTokensDetails": [{"modality": 4, "tokenCount": 6}, {"modality": 5, "tokenCount": 4}],
            }
        }
    )
    assert usage.audio_input_tokens == 6
    assert usage.details == {"input_image_tokens": 4}  # DOCUMENT pages are billed as image input


def test_stream_running_totals_take_the_last_never_the_sum() -> None:
    chunks = [
        {
            "candidates": [{"content": {"parts": [{"text": "a"}]}}],
            "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 0, "totalTokenCount": 31},
        },
        {
            "candidates": [{"content": {"parts": [{"text": "b"}]}}],
            "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 48, "totalTokenCount": 79},
        },
        {
            "candidates": [{"content": {"parts": [{"text": "c"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 49, "totalTokenCount": 80},
        },
        {"candidates": [], "usageMetadata": {"trafficType": "ON_DEMAND"}},  # a trailing block without counts
    ]
    usage = gemini.extract(chunks)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (31, 49, 80)
    sdk = [types.GenerateContentResponse.model_validate(chunk) for chunk in chunks]
    assert gemini.extract(sdk) == usage


def test_embeddings_sdk_statistics_and_vertex_characters() -> None:
    response = types.EmbedContentResponse(
        embeddings=[
            types.ContentEmbedding(values=[0.1], statistics=types.ContentEmbeddingStatistics(token_count=6.0)),
            types.ContentEmbedding(values=[0.2], statistics=types.ContentEmbeddingStatistics(token_count=4.0)),
        ],
        metadata=types.EmbedContentMetadata(billable_character_count=37),
    )
    usage = gemini.extract(response, "embedContent")
    assert (usage.input_tokens, usage.output_tokens) == (10, None)
    assert usage.details == {"billable_characters": 37}
    assert extract_usage(response, "vertex", "embedContent") == usage


def test_embeddings_vertex_rest_predictions() -> None:
    body = {
        "predictions": [{"embeddings": {"statistics": {"token_count": 7, "truncated": False}, "values": [0.1]}}],
        "metadata": {"billableCharacterCount": 20},
    }
    assert gemini.extract(body) == TokenUsage(input_tokens=7, details={"billable_characters": 20})


def test_embeddings_with_usage_metadata_and_without_any_usage() -> None:
    assert gemini.extract({"embedding": {"values": [0.1]}, "usageMetadata": {"promptTokenCount": 9}}) == TokenUsage(
        input_tokens=9
    )
    assert gemini.extract({"embeddings": [{"values": [0.1, 0.2]}]}, "embedContent") is None


# ---- invariants and malformed input ---------------------------------------------------------
@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"promptTokenCount": 10, "cachedContentTokenCount": 11}, "cached_content_token_count"),
        ({"promptTokenCount": -1}, "prompt_token_count"),
        ({"promptTokenCount": 5, "candidatesTokenCount": 1, "thoughtsTokenCount": -3}, "thoughts_token_count"),
        (
            {"promptTokenCount": 5, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 6}]},
            "prompt_tokens_details",
        ),
        (
            {
                "promptTokenCount": 5,
                "cachedContentTokenCount": 2,
                "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 3}],
            },
            "cache_tokens_details",
        ),
    ],
)
def test_counts_that_break_an_invariant_are_rejected(metadata: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        gemini.extract({"usageMetadata": metadata})
    assert field in caught.value.field


@pytest.mark.parametrize(
    "response",
    [
        None,
        "",
        b"x",
        4,
        {},
        [],
        [None, 3, {"usageMetadata": "x"}],
        {"usageMetadata": None},
        {"usageMetadata": {"trafficType": "ON_DEMAND"}},
        {"usageMetadata": {"promptTokenCount": "8"}},
        {"usageMetadata": {"promptTokenCount": 2.5}},
        {"usageMetadata": [1, 2]},
        {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
        {"embeddings": "x"},
        {"predictions": [None, {"embeddings": 3}]},
    ],
)
def test_malformed_input_gives_none(response: Any) -> None:
    assert gemini.extract(response) is None


# ---- property: never anything but None, a TokenUsage or a ValidationError ---------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
COUNT = st.none() | st.integers(-3, 5000) | st.floats(-1, 5000) | st.text(max_size=3)
MODALITIES = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "modality": st.sampled_from(["TEXT", "AUDIO", "IMAGE", "VIDEO", "DOCUMENT", "x", 1, 4, 9, None]),
            "tokenCount": COUNT,
        },
    ),
    max_size=3,
)
METADATA = st.fixed_dictionaries(
    {},
    optional={
        "promptTokenCount": COUNT,
        "candidatesTokenCount": COUNT,
        "thoughtsTokenCount": COUNT,
        "toolUsePromptTokenCount": COUNT,
        "cachedContentTokenCount": COUNT,
        "totalTokenCount": COUNT,
        "promptTokensDetails": MODALITIES,
        "cacheTokensDetails": MODALITIES,
        "candidatesTokensDetails": MODALITIES,
        "toolUsePromptTokensDetails": MODALITIES,
    },
)
SHAPED = st.one_of(
    METADATA.map(lambda m: {"usageMetadata": m}),
    st.lists(st.one_of(METADATA.map(lambda m: {"usageMetadata": m}), JSON), max_size=4),
    st.fixed_dictionaries({"embeddings": st.lists(JSON, max_size=3)}, optional={"metadata": JSON}),
    JSON,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SHAPED, st.sampled_from([None, "generateContent", "embedContent"]))
def test_any_input_gives_none_a_usage_or_a_validation_error(response: Any, api: str | None) -> None:
    try:
        result = extract_usage(response, "gemini", api)
    except ValidationError:
        return
    if result is not None:
        assert isinstance(result, TokenUsage)
        assert not result.is_empty  # "nothing reported" is None, never zeros


class Broken:
    """A third-party object whose every attribute read fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"broken {name}")


def test_feeding_a_broken_object_neither_raises_nor_counts() -> None:
    state = gemini.GenerateContentStreamState()
    state.feed(Broken())
    state.feed({"usageMetadata": Broken()})
    assert state.result() is None
    assert gemini.extract(Broken()) is None
