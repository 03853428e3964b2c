"""Gemini API through the real `google-genai` SDK: thoughts outside candidates, implicit cache, CRLF SSE."""

from __future__ import annotations

import json
import math

from _mock_wire import assert_extracted, post
from google import genai
from google.genai import types

from tokentrail.mockprovider import REASONING_BY_EFFORT, MockProvider
from tokentrail.providers import extract_usage

LONG = "Gemini reads this paragraph about observability and costs. " * 100  # 6,000 chars


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def test_thinking_model_reports_thoughts_outside_the_candidates_count(gem: genai.Client, mock: MockProvider):
    response = gem.models.generate_content(model="gemini-2.5-flash", contents="Why is the sky blue?")
    usage = response.usage_metadata
    assert usage.prompt_token_count == tokens("Why is the sky blue?")
    assert usage.thoughts_token_count == REASONING_BY_EFFORT["medium"]
    assert usage.candidates_token_count == tokens(response.text)  # thoughts are not in it
    assert (
        usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )
    assert usage.cached_content_token_count is None  # zero counts are omitted
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == "gemini-2.5-flash" and response.response_id
    extracted = extract_usage(response, "gemini", "generateContent")
    assert extracted.output_tokens == usage.candidates_token_count + usage.thoughts_token_count
    assert_extracted(extracted, mock.calls[-1].usage)


def test_thinking_budget_and_older_models(gem: genai.Client):
    off = gem.models.generate_content(
        model="gemini-2.5-flash",
        contents="hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0)),
    )
    assert off.usage_metadata.thoughts_token_count is None
    capped = gem.models.generate_content(
        model="gemini-2.5-pro",
        contents="hi",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=50, include_thoughts=True)
        ),
    )
    assert capped.usage_metadata.thoughts_token_count == 50
    parts = capped.candidates[0].content.parts
    assert parts[0].thought is True and not parts[-1].thought
    old = gem.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert old.usage_metadata.thoughts_token_count is None


def test_max_output_tokens_counts_thoughts_first(gem: genai.Client):
    response = gem.models.generate_content(
        model="gemini-2.5-flash", contents="essay", config=types.GenerateContentConfig(max_output_tokens=200)
    )
    usage = response.usage_metadata
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert usage.thoughts_token_count + usage.candidates_token_count == 200


def test_repeated_long_prompt_reports_cached_content_inside_the_prompt_count(gem: genai.Client, mock: MockProvider):
    config = types.GenerateContentConfig(system_instruction="Answer briefly.")
    first = gem.models.generate_content(model="gemini-2.5-flash", contents=LONG, config=config)
    second = gem.models.generate_content(model="gemini-2.5-flash", contents=LONG, config=config)
    total = tokens("Answer briefly.") + tokens(LONG)
    assert first.usage_metadata.prompt_token_count == second.usage_metadata.prompt_token_count == total
    assert first.usage_metadata.cached_content_token_count is None
    cached = second.usage_metadata.cached_content_token_count
    assert cached == 1024 + (total - 1024) // 128 * 128
    assert second.usage_metadata.cache_tokens_details[0].token_count == cached
    extracted = extract_usage(second, "gemini")
    assert extracted.input_tokens == total and extracted.cache_read_tokens == cached
    assert_extracted(extracted, mock.calls[-1].usage)


def test_stream_running_totals_on_every_chunk(gem: genai.Client, mock: MockProvider):
    chunks = list(gem.models.generate_content_stream(model="gemini-2.5-flash", contents="Tell me a story"))
    assert len(chunks) > 1
    counts = [chunk.usage_metadata.candidates_token_count for chunk in chunks]
    assert counts == sorted(counts)  # running totals, never per-chunk amounts
    text = "".join(chunk.text or "" for chunk in chunks)
    assert counts[-1] == tokens(text)
    assert all(chunk.usage_metadata.thoughts_token_count == REASONING_BY_EFFORT["medium"] for chunk in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    extracted = extract_usage(chunks, "gemini", "streamGenerateContent")
    assert extracted.output_tokens == counts[-1] + REASONING_BY_EFFORT["medium"]  # the last totals, not a sum
    assert_extracted(extracted, mock.calls[-1].usage)


def test_raw_stream_uses_crlf_separators_and_plain_stream_is_a_json_array(mock: MockProvider):
    body = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    base = f"{mock.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    status, headers, raw = post(f"{base}?alt=sse", body, {"x-goog-api-key": "k"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and len(events) > 2
    assert all(event.startswith(b"data: {") and b"\n" not in event for event in events[:-1])
    metadata = [json.loads(event[6:])["usageMetadata"] for event in events[:-1]]
    assert all("promptTokenCount" in m and "totalTokenCount" in m for m in metadata)
    status, _, plain = post(base, body)
    array = json.loads(plain)
    assert status == 200 and isinstance(array, list) and array[-1]["usageMetadata"] == metadata[-1]


async def test_async_generate_and_stream(gem: genai.Client):
    response = await gem.aio.models.generate_content(model="gemini-2.5-flash-lite", contents="hello")
    assert response.usage_metadata.thoughts_token_count is None  # flash-lite does not think by default
    stream = await gem.aio.models.generate_content_stream(model="gemini-2.5-flash-lite", contents="hello")
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage_metadata.candidates_token_count == response.usage_metadata.candidates_token_count


def test_embed_content(gem: genai.Client, mock: MockProvider):
    result = gem.models.embed_content(model="gemini-embedding-001", contents=["one", "two"])  # batchEmbedContents
    assert [len(e.values) for e in result.embeddings] == [3072, 3072]
    assert result.embeddings[0].values != result.embeddings[1].values
    small = gem.models.embed_content(
        model="gemini-embedding-001", contents="one", config=types.EmbedContentConfig(output_dimensionality=16)
    )
    assert len(small.embeddings[0].values) == 16
    status, _, raw = post(
        f"{mock.url}/v1beta/models/text-embedding-004:embedContent", {"content": {"parts": [{"text": "x"}]}}
    )
    assert status == 200 and len(json.loads(raw)["embedding"]["values"]) == 768


def test_structured_output_follows_the_response_schema(gem: genai.Client):
    schema = {
        "type": "OBJECT",
        "properties": {"title": {"type": "STRING"}, "score": {"type": "INTEGER"}},
        "required": ["title", "score"],
    }
    response = gem.models.generate_content(
        model="gemini-2.5-flash",
        contents="rate it",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema),
    )
    parsed = json.loads(response.text)
    assert isinstance(parsed["title"], str) and isinstance(parsed["score"], int)
