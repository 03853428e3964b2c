"""OpenAI wire format: Chat Completions, legacy Completions and Embeddings, plus the Azure
OpenAI flavour of each (PROVIDERS.md A.1, A.3, A.4).

Usage is inclusive as OpenAI reports it: `prompt_tokens` includes `cached_tokens`,
`completion_tokens` includes `reasoning_tokens`. Streams carry usage only in an extra
`choices: []` chunk when `stream_options.include_usage` is true; `finish_reason` rides on the
chunk before it. Azure streams open with an empty chunk (`id: ""`, `model: ""`, `choices: []`)
that holds only `prompt_filter_results`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

from tokentrail.mockprovider.content import Completion, complete, embedding, float32_base64, pieces, reasoning_for
from tokentrail.mockprovider.exchange import Context, MockError, MockRequest, Reply, StreamReply, json_reply, sse
from tokentrail.mockprovider.headers import azure_rate_headers, openai_rate_headers
from tokentrail.mockprovider.state import BucketReading, Usage
from tokentrail.mockprovider.tokens import Part, as_text, count_tokens, prompt_seed, prompt_tokens

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_SAFE = {"filtered": False, "severity": "safe"}
_FILTERS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": _FILTERS}]


def is_reasoning_model(model: str) -> bool:
    """OpenAI reasoning models (o-series, gpt-5 family) report reasoning tokens."""
    return model.rsplit("/", 1)[-1].lower().startswith(REASONING_PREFIXES)


def fingerprint(model: str) -> str:
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]


def service_tier(request: MockRequest) -> str:
    tier = request.field("service_tier")
    return tier if isinstance(tier, str) and tier not in ("auto", "") else "default"


def max_tokens(request: MockRequest, *names: str, default: int | None = None) -> int | None:
    for name in names:
        value = request.field(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise MockError("bad_request", f"Invalid '{name}': expected an integer of at least 1.", param=name)
        return value
    return default


def response_headers(ctx: Context, readings: dict[str, BucketReading]) -> list[tuple[str, str]]:
    """Request id and rate-limit headers of an OpenAI or Azure answer."""
    if ctx.request.provider == "azure":
        return [("apim-request-id", ctx.request.request_id), *azure_rate_headers(readings)]
    return [
        ("x-request-id", ctx.request.request_id),
        ("openai-version", "2020-10-01"),
        ("openai-processing-ms", "1"),
        *openai_rate_headers(readings),
    ]


def message_parts(messages: Any, tools: Any = None) -> list[Part]:
    """Chat prompt parts: tool definitions, then every message's text (non-text as JSON)."""
    parts: list[Part] = []
    if tools:
        parts.append(Part(as_text(tools)))
    if not isinstance(messages, list):
        return parts
    for message in messages:
        if not isinstance(message, dict):
            parts.append(Part(as_text(message)))
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(Part(content))
        elif isinstance(content, list):
            for block in content:
                text = block.get("text") if isinstance(block, dict) else None
                parts.append(Part(text if isinstance(text, str) else as_text(block)))
        for key in ("tool_calls", "function_call"):
            if message.get(key):
                parts.append(Part(as_text(message[key])))
    return parts


def response_schema(request: MockRequest) -> tuple[Any, bool]:
    """(JSON schema to answer with, JSON mode) from `response_format`."""
    fmt = request.field("response_format")
    if not isinstance(fmt, dict):
        return None, False
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        return (spec.get("schema") if isinstance(spec, dict) else None) or {}, True
    return None, fmt.get("type") == "json_object"


def generate(
    ctx: Context,
    parts: list[Part],
    index: int,
    limit: int | None,
    reasoning: int,
    schema: Any = None,
    json_mode: bool = False,
) -> Completion:
    return complete(
        ctx.config.seed,
        ctx.request.model,
        prompt_seed(parts),
        index,
        limit=limit,
        reasoning=reasoning,
        exact_tokens=ctx.options.output_tokens,
        schema=schema,
        json_mode=json_mode,
    )


# ---- chat completions ----------------------------------------------------------------------
def chat(request: MockRequest, ctx: Context) -> Reply | StreamReply:
    messages = request.field("messages")
    if not isinstance(messages, list) or not messages:
        raise MockError(
            "bad_request", "'messages' is a required property and must be a non-empty array.", param="messages"
        )
    n = request.field("n") or 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise MockError("bad_request", "Invalid 'n': expected an integer between 1 and 128.", param="n")
    parts = message_parts(messages, request.field("tools"))
    total = prompt_tokens(parts)
    cached, digests = ctx.cached_block_tokens(parts, total)
    limit = max_tokens(request, "max_completion_tokens", "max_tokens")
    reasoning = reasoning_for(request.field("reasoning_effort")) if is_reasoning_model(request.model) else 0
    schema, json_mode = response_schema(request)
    answers = [generate(ctx, parts, i, limit, reasoning, schema, json_mode) for i in range(n)]
    usage = Usage(
        input_tokens=total,
        output_tokens=sum(a.output_tokens for a in answers),
        cache_read_tokens=cached,
        reasoning_tokens=sum(a.reasoning_tokens for a in answers),
    )
    readings = ctx.admit({"requests": 1, "tokens": usage.total_tokens})
    ctx.store_prefixes(digests)
    headers = response_headers(ctx, readings)
    common = {
        "id": f"chatcmpl-{ctx.new_id(29, _ALNUM)}",
        "created": int(time.time()),
        "model": request.model,
    }
    azure = request.provider == "azure"
    if not azure:
        common["service_tier"] = service_tier(request)
    common["system_fingerprint"] = fingerprint(request.model)
    if request.field("stream"):
        options = request.field("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        events = _chat_stream(common, answers, usage if include_usage else None, azure, "chat.completion.chunk")
        return StreamReply(events, headers, usage=usage)
    choices = []
    for index, answer in enumerate(answers):
        choice: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "length" if answer.truncated else "stop",
        }
        if azure:
            choice["content_filter_results"] = _FILTERS
        choices.append(choice)
    body: dict[str, Any] = {**common, "object": "chat.completion", "choices": choices, "usage": chat_usage(usage)}
    if azure:
        body["prompt_filter_results"] = _PROMPT_FILTERS
    reply = json_reply(body, headers)
    reply.output_tokens, reply.usage = usage.output_tokens, usage
    return reply


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def chat_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_stream(
    common: dict[str, Any], answers: list[Completion], usage: Usage | None, azure: bool, kind: str
) -> Iterator[tuple[bytes, int]]:
    """Chunks of a streamed chat (`kind` chat.completion.chunk) or legacy completion (text_completion)."""
    chat = kind == "chat.completion.chunk"
    base = {**common, "object": kind}
    if usage is not None:
        base["usage"] = None
    if azure:
        yield (
            sse(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": _PROMPT_FILTERS,
                }
            ),
            0,
        )

    def chunk(index: int, delta: Any, finish: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index}
        if chat:
            choice["delta"] = delta
        else:
            choice["text"] = delta
        choice["logprobs"] = None
        choice["finish_reason"] = finish
        if azure:
            choice["content_filter_results"] = {} if finish is None and delta in ({}, "") else _FILTERS
        return {**base, "choices": [choice]}

    for index, answer in enumerate(answers):
        if chat:
            opening = {"role": "assistant", "content": "", "refusal": None}
            yield sse(chunk(index, opening, None)), answer.reasoning_tokens
        for piece in pieces(answer.text):
            yield sse(chunk(index, {"content": piece} if chat else piece, None)), count_tokens(piece)
        yield sse(chunk(index, {} if chat else "", "length" if answer.truncated else "stop")), 0
    if usage is not None:
        yield sse({**base, "choices": [], "usage": chat_usage(usage) if chat else legacy_usage(usage)}), 0
    yield sse("[DONE]"), 0


# ---- legacy completions --------------------------------------------------------------------
def completions(request: MockRequest, ctx: Context) -> Reply | StreamReply:
    prompt = request.field("prompt")
    if prompt is None:
        raise MockError("bad_request", "'prompt' is a required property.", param="prompt")
    prompts = prompt if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else [prompt]
    # the legacy endpoint defaults to 16 tokens, so long answers end with `length`
    limit = max_tokens(request, "max_tokens", default=16)
    n = request.field("n") or 1
    answers: list[Completion] = []
    total = 0
    for number, text in enumerate(prompts):
        parts = [Part(as_text(text))]
        total += prompt_tokens(parts)
        answers.extend(generate(ctx, parts, number * 1000 + i, limit, 0) for i in range(n))
    usage = Usage(input_tokens=total, output_tokens=sum(a.output_tokens for a in answers))
    readings = ctx.admit({"requests": 1, "tokens": usage.total_tokens})
    headers = response_headers(ctx, readings)
    common = {"id": f"cmpl-{ctx.new_id(29, _ALNUM)}", "created": int(time.time()), "model": request.model}
    azure = request.provider == "azure"
    if request.field("stream"):
        options = request.field("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        events = _chat_stream(common, answers, usage if include_usage else None, azure, "text_completion")
        return StreamReply(events, headers, usage=usage)
    choices = [
        {"text": a.text, "index": i, "logprobs": None, "finish_reason": "length" if a.truncated else "stop"}
        for i, a in enumerate(answers)
    ]
    body = {**common, "object": "text_completion", "choices": choices, "usage": legacy_usage(usage)}
    reply = json_reply(body, headers)
    reply.output_tokens, reply.usage = usage.output_tokens, usage
    return reply


def legacy_usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


# ---- embeddings ----------------------------------------------------------------------------
def embeddings(request: MockRequest, ctx: Context) -> Reply:
    raw = request.field("input")
    if raw is None or raw == "" or raw == []:
        raise MockError("bad_request", "'input' is a required property and must not be empty.", param="input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw)):
        inputs: list[Any] = [raw]
    elif isinstance(raw, list):
        inputs = raw
    else:
        raise MockError("bad_request", "Invalid 'input': expected a string or an array.", param="input")
    dimensions = request.field("dimensions")
    if dimensions is None:
        dimensions = 3072 if "large" in request.model else 1536
    elif not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= 8192:
        raise MockError(
            "bad_request", "Invalid 'dimensions': expected an integer between 1 and 8192.", param="dimensions"
        )
    tokens = 0
    for item in inputs:
        tokens += len(item) if isinstance(item, list) else count_tokens(as_text(item))
    usage = Usage(input_tokens=tokens, output_tokens=0)
    readings = ctx.admit({"requests": 1, "tokens": tokens})
    base64_format = request.field("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = embedding(as_text(item), dimensions, ctx.config.seed)
        data.append(
            {"object": "embedding", "index": index, "embedding": float32_base64(vector) if base64_format else vector}
        )
    body = {
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    headers = response_headers(ctx, readings)
    if request.provider == "openai":
        headers.append(("openai-model", request.model))
    reply = json_reply(body, headers)
    reply.usage = usage
    return reply
