"""OpenAI wire format through the real `openai` SDK: chat, responses, embeddings, completions."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Literal

import openai
import pytest
from _mock_wire import assert_extracted, post
from pydantic import BaseModel

from tokentrail.mockprovider import REASONING_BY_EFFORT, MockProvider
from tokentrail.providers import extract_usage


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def cached_blocks(total: int) -> int:
    """OpenAI's cache granularity: 1024 tokens, then 128-token steps."""
    return 0 if total < 1024 else 1024 + (total - 1024) // 128 * 128


LONG = "The quick brown fox jumps over the lazy dog near the river bank. " * 90  # 5,850 chars


# ---- chat completions -----------------------------------------------------------------------
def test_chat_usage_is_derived_from_the_prompt_and_the_answer(oai: openai.OpenAI, mock: MockProvider):
    system, user = "You are terse.", "Hello there, how are you today?"
    response = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "system", "content": system}, {"role": "user", "content": user}]
    )
    text = response.choices[0].message.content
    assert text and response.choices[0].finish_reason == "stop"
    assert response.id.startswith("chatcmpl-") and response.model == "gpt-4o-mini"
    assert response.object == "chat.completion" and response.service_tier == "default"
    assert response.system_fingerprint.startswith("fp_")
    usage = response.usage
    assert usage.prompt_tokens == tokens(system) + tokens(user)
    assert usage.completion_tokens == tokens(text)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert_extracted(extract_usage(response, "openai", "chat.completions"), mock.calls[-1].usage)


def test_same_request_same_answer_and_unknown_models_are_echoed(oai: openai.OpenAI):
    messages = [{"role": "user", "content": "determinism please"}]
    first = oai.chat.completions.create(model="my-finetune:v7", messages=messages)
    second = oai.chat.completions.create(model="my-finetune:v7", messages=messages)
    other = oai.chat.completions.create(model="my-finetune:v7", messages=[{"role": "user", "content": "else"}])
    assert first.model == "my-finetune:v7"
    assert first.choices[0].message.content == second.choices[0].message.content
    assert other.choices[0].message.content != first.choices[0].message.content


def test_second_identical_long_prompt_reads_the_cache_in_128_token_blocks(oai: openai.OpenAI, mock: MockProvider):
    messages = [{"role": "user", "content": LONG}]
    total = tokens(LONG)
    first = oai.chat.completions.create(model="gpt-4o", messages=messages)
    second = oai.chat.completions.create(model="gpt-4o", messages=messages)
    assert first.usage.prompt_tokens == second.usage.prompt_tokens == total
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == cached_blocks(total)
    extracted = extract_usage(second, "openai", "chat.completions")
    assert extracted.input_tokens == total  # prompt_tokens already includes the cached tokens
    assert extracted.cache_read_tokens == cached_blocks(total)
    assert_extracted(extracted, mock.calls[-1].usage)
    # the cache belongs to the model
    other = oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert other.usage.prompt_tokens_details.cached_tokens == 0


def test_a_shared_prefix_is_cached_up_to_the_last_whole_block(oai: openai.OpenAI):
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG + "A" * 800}])
    response = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG + "B" * 800}])
    shared = len(LONG) // 4  # whole tokens of the common prefix
    assert response.usage.prompt_tokens_details.cached_tokens == cached_blocks(shared)
    assert 0 < cached_blocks(shared) < response.usage.prompt_tokens


def test_short_prompts_are_never_cached(oai: openai.OpenAI):
    messages = [{"role": "user", "content": "x" * 4000}]  # 1000 tokens, below the 1024 minimum
    oai.chat.completions.create(model="gpt-4o", messages=messages)
    again = oai.chat.completions.create(model="gpt-4o", messages=messages)
    assert again.usage.prompt_tokens == 1000
    assert again.usage.prompt_tokens_details.cached_tokens == 0


@pytest.mark.parametrize(
    ("model", "effort", "reasoning"),
    [
        ("o3-mini", "high", REASONING_BY_EFFORT["high"]),
        ("o4-mini", "low", REASONING_BY_EFFORT["low"]),
        ("gpt-5", None, REASONING_BY_EFFORT["medium"]),
        ("o1", "minimal", 0),
        ("gpt-4o", "high", 0),  # not a reasoning model
    ],
)
def test_reasoning_models_report_reasoning_inside_completion_tokens(
    oai: openai.OpenAI, mock: MockProvider, model: str, effort: str | None, reasoning: int
):
    extra = {"reasoning_effort": effort} if effort else {}
    response = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "Think."}], **extra)
    details = response.usage.completion_tokens_details
    assert details.reasoning_tokens == reasoning
    assert response.usage.completion_tokens == reasoning + tokens(response.choices[0].message.content)
    assert_extracted(extract_usage(response, "openai"), mock.calls[-1].usage)


def test_max_tokens_cuts_the_answer_with_finish_reason_length(oai: openai.OpenAI):
    response = oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Tell me a story"}], max_tokens=5
    )
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 5 == tokens(response.choices[0].message.content)
    # a reasoning model spends the limit on reasoning first
    starved = oai.chat.completions.create(
        model="o3", messages=[{"role": "user", "content": "Tell me a story"}], max_completion_tokens=100
    )
    assert starved.choices[0].finish_reason == "length"
    assert starved.choices[0].message.content == ""
    assert starved.usage.completion_tokens == starved.usage.completion_tokens_details.reasoning_tokens == 100


def test_output_length_can_be_fixed_per_request(oai: openai.OpenAI):
    response = oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-mock-output-tokens": "37"}
    )
    assert response.usage.completion_tokens == 37
    assert len(response.choices[0].message.content) == 37 * 4


def test_n_choices_each_get_an_answer_and_completion_tokens_sum_them(oai: openai.OpenAI):
    response = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], n=3)
    texts = [choice.message.content for choice in response.choices]
    assert [choice.index for choice in response.choices] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert response.usage.completion_tokens == sum(tokens(t) for t in texts)


def test_stream_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI):
    messages = [{"role": "user", "content": "stream me"}]
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=messages, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk with empty choices
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    plain = oai.chat.completions.create(model="gpt-4o", messages=messages)
    assert streamed == plain.choices[0].message.content


def test_stream_with_include_usage_ends_with_a_usage_only_chunk(oai: openai.OpenAI, mock: MockProvider):
    stream = oai.chat.completions.create(
        model="o4-mini",
        messages=[{"role": "user", "content": LONG}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    last, before = chunks[-1], chunks[-2]
    assert last.choices == [] and last.usage is not None
    assert before.choices[0].finish_reason == "stop"  # on the chunk before the usage chunk
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert last.usage.prompt_tokens == tokens(LONG)
    assert last.usage.completion_tokens_details.reasoning_tokens == REASONING_BY_EFFORT["medium"]
    assert_extracted(extract_usage(chunks, "openai", "chat.completions"), mock.calls[-1].usage)


def test_raw_chat_stream_is_sse_ending_with_done(mock: MockProvider):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True}
    status, headers, raw = post(f"{mock.openai_base_url}/chat/completions", body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = raw.decode().split("\n\n")
    assert events[-2] == "data: [DONE]" and events[-1] == ""
    assert all(event.startswith("data: {") for event in events[:-2])


def test_stream_helper_accumulates_the_final_completion(oai: openai.OpenAI):
    with oai.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.usage.completion_tokens == tokens(final.choices[0].message.content)


async def test_async_chat_and_stream(mock: MockProvider):
    async with openai.AsyncOpenAI(base_url=mock.openai_base_url, api_key="sk-test", max_retries=0) as client:
        response = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}])
        assert response.usage.prompt_tokens == 1
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "a"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage.completion_tokens == response.usage.completion_tokens


class Address(BaseModel):
    city: str
    zip_code: str


class Person(BaseModel):
    name: str
    age: int
    mood: Literal["happy", "sad"]
    tags: list[str]
    address: Address
    nickname: str | None


def test_structured_output_parses_into_the_requested_schema(oai: openai.OpenAI):
    response = oai.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "a person"}], response_format=Person
    )
    person = response.choices[0].message.parsed
    assert isinstance(person, Person) and person.mood in ("happy", "sad") and person.tags
    assert response.usage.completion_tokens == tokens(response.choices[0].message.content)


def test_service_tier_is_echoed(oai: openai.OpenAI):
    response = oai.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "a"}], service_tier="flex"
    )
    assert response.service_tier == "flex"


# ---- responses ------------------------------------------------------------------------------
def test_responses_usage_and_reasoning_item(oai: openai.OpenAI, mock: MockProvider):
    instructions, text = "Be brief.", "What is the capital of France?"
    response = oai.responses.create(model="gpt-5-mini", instructions=instructions, input=text)
    assert response.id.startswith("resp_") and response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    usage = response.usage
    assert usage.input_tokens == tokens(instructions) + tokens(text)
    assert usage.output_tokens_details.reasoning_tokens == REASONING_BY_EFFORT["medium"]
    assert usage.output_tokens == usage.output_tokens_details.reasoning_tokens + tokens(response.output_text)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert_extracted(extract_usage(response, "openai", "responses"), mock.calls[-1].usage)


def test_responses_cache_and_message_items(oai: openai.OpenAI):
    items = [{"role": "user", "content": [{"type": "input_text", "text": LONG}]}]
    oai.responses.create(model="gpt-4.1", input=items)
    second = oai.responses.create(model="gpt-4.1", input=items)
    assert second.usage.input_tokens == tokens(LONG)
    assert second.usage.input_tokens_details.cached_tokens == cached_blocks(tokens(LONG))
    assert [item.type for item in second.output] == ["message"]


def test_responses_max_output_tokens_makes_it_incomplete(oai: openai.OpenAI):
    response = oai.responses.create(model="gpt-4.1", input="a long essay", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 16


def test_responses_stream_events(oai: openai.OpenAI, mock: MockProvider):
    events = list(oai.responses.create(model="o3", input="stream it", stream=True, reasoning={"effort": "low"}))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert events[0].response.usage is None and events[1].response.usage is None
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1].response
    assert final.usage.output_tokens_details.reasoning_tokens == REASONING_BY_EFFORT["low"]
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == final.output_text
    assert_extracted(extract_usage(events, "openai", "responses"), mock.calls[-1].usage)


def test_raw_responses_stream_has_event_lines(mock: MockProvider):
    status, _, raw = post(f"{mock.openai_base_url}/responses", {"model": "gpt-4.1", "input": "x", "stream": True})
    assert status == 200
    blocks = [block for block in raw.decode().split("\n\n") if block]
    assert all(block.startswith("event: response.") and "\ndata: {" in block for block in blocks)


def test_responses_stream_helper_and_async(oai: openai.OpenAI):
    with oai.responses.stream(model="gpt-4.1", input="hello") as stream:
        final = stream.get_final_response()
    assert final.usage.output_tokens == tokens(final.output_text)


async def test_async_responses(mock: MockProvider):
    async with openai.AsyncOpenAI(base_url=mock.openai_base_url, api_key="sk-test", max_retries=0) as client:
        response = await client.responses.create(model="gpt-4.1", input="hello")
        stream = await client.responses.create(model="gpt-4.1", input="hello", stream=True)
        events = [event async for event in stream]
    assert events[-1].response.usage.output_tokens == response.usage.output_tokens


# ---- embeddings and legacy completions --------------------------------------------------------
def test_embeddings_in_base64_and_float(oai: openai.OpenAI, mock: MockProvider):
    inputs = ["first text", "a second, longer text"]
    default = oai.embeddings.create(model="text-embedding-3-small", input=inputs)  # the SDK asks for base64
    floats = oai.embeddings.create(model="text-embedding-3-small", input=inputs, encoding_format="float")
    assert default.usage.prompt_tokens == default.usage.total_tokens == sum(tokens(t) for t in inputs)
    for a, b in zip(default.data, floats.data, strict=True):
        assert len(a.embedding) == len(b.embedding) == 1536
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
        assert math.isclose(math.sqrt(sum(v * v for v in b.embedding)), 1.0, rel_tol=1e-5)
    assert default.data[0].embedding != default.data[1].embedding
    assert_extracted(extract_usage(default, "openai", "embeddings"), mock.calls[-1].usage)


def test_embeddings_wire_dimensions_and_model_header(mock: MockProvider):
    body = {"model": "text-embedding-3-large", "input": "hello", "dimensions": 8, "encoding_format": "base64"}
    status, headers, raw = post(f"{mock.openai_base_url}/embeddings", body)
    assert status == 200 and headers["openai-model"] == "text-embedding-3-large"
    vector = json.loads(raw)["data"][0]["embedding"]
    assert len(struct.unpack("<8f", base64.b64decode(vector))) == 8


def test_legacy_completions_default_to_16_tokens(oai: openai.OpenAI, mock: MockProvider):
    short = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say something")
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 16
    assert short.usage.prompt_tokens == tokens("Say something")
    full = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say something", max_tokens=500)
    assert full.choices[0].finish_reason == "stop"
    assert full.usage.completion_tokens == tokens(full.choices[0].text)
    chunks = list(
        oai.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Say", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    assert_extracted(extract_usage(chunks, "openai", "completions"), mock.calls[-1].usage)
