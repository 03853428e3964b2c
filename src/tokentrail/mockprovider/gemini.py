"""Gemini API wire format (PROVIDERS.md A.6): `models/{model}:generateContent`,
`:streamGenerateContent` (SSE with CRLF separators when `alt=sse`, else one JSON array),
`:embedContent` and `:batchEmbedContents`, `:countTokens`.

`promptTokenCount` includes `cachedContentTokenCount` (implicit caching of a repeated prefix,
in 128-token blocks from `cache_min_tokens`); thinking models (2.5 and 3) report
`thoughtsTokenCount`, which is NOT in `candidatesTokenCount`: total = prompt + candidates +
thoughts. Streams repeat `usageMetadata` on every chunk as running totals. Zero counts are
omitted, as proto3 JSON does. There are no rate-limit headers; a 429 says when to retry in
its body. Embedding answers carry no usage (the Gemini API reports none).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tokentrail.mockprovider.content import Completion, complete, embedding, lorem, pieces, reasoning_for, rng_for
from tokentrail.mockprovider.exchange import Context, MockError, MockRequest, Reply, StreamReply, json_reply, sse
from tokentrail.mockprovider.headers import BASE62
from tokentrail.mockprovider.state import Usage
from tokentrail.mockprovider.tokens import Part, as_text, count_tokens, prompt_seed, prompt_tokens

_WORDS_PER_CHUNK = 6


def _get(mapping: Any, camel: str, snake: str, default: Any = None) -> Any:
    if not isinstance(mapping, dict):
        return default
    return mapping.get(camel, mapping.get(snake, default))


def _content_parts(content: Any) -> list[Part]:
    parts: list[Part] = []
    if isinstance(content, str):
        return [Part(content)]
    for part in _get(content, "parts", "parts", []) or []:
        text = part.get("text") if isinstance(part, dict) else None
        parts.append(Part(text if isinstance(text, str) else as_text(part)))
    return parts


def prompt_parts(body: Any) -> list[Part]:
    """System instruction, tools, then every content's parts."""
    parts = _content_parts(_get(body, "systemInstruction", "system_instruction"))
    tools = _get(body, "tools", "tools")
    if tools:
        parts.append(Part(as_text(tools)))
    for content in _get(body, "contents", "contents", []) or []:
        parts.extend(_content_parts(content))
    return parts


def is_thinking_model(model: str) -> bool:
    name = model.rsplit("/", 1)[-1].lower()
    return ("2.5" in name or "gemini-3" in name) and "flash-lite" not in name


def _thoughts(model: str, config: Any) -> int:
    thinking = _get(config, "thinkingConfig", "thinking_config")
    budget = _get(thinking, "thinkingBudget", "thinking_budget")
    level = _get(thinking, "thinkingLevel", "thinking_level")
    if not is_thinking_model(model) and not (isinstance(budget, int) and budget > 0):
        return 0
    if budget == 0:
        return 0
    spent = reasoning_for(level.lower() if isinstance(level, str) else None)
    return min(spent, budget) if isinstance(budget, int) and budget > 0 else spent


def _schema(config: Any) -> tuple[Any, bool]:
    schema = _get(config, "responseJsonSchema", "response_json_schema") or _get(
        config, "responseSchema", "response_schema"
    )
    json_mode = _get(config, "responseMimeType", "response_mime_type") == "application/json"
    return schema, json_mode or schema is not None


def usage_metadata(usage: Usage, candidates: int) -> dict[str, Any]:
    thoughts = usage.reasoning_tokens
    out: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    if candidates:
        out["candidatesTokenCount"] = candidates
    out["totalTokenCount"] = usage.input_tokens + candidates + thoughts
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.input_tokens}]
    if usage.cache_read_tokens:
        out["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.cache_read_tokens}]
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def generate(request: MockRequest, ctx: Context) -> Reply | StreamReply:
    body = request.body
    if not _get(body, "contents", "contents"):
        raise MockError("bad_request", "* GenerateContentRequest.contents: contents is not specified")
    config = _get(body, "generationConfig", "generation_config", {})
    limit = _get(config, "maxOutputTokens", "max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise MockError("bad_request", "* GenerateContentRequest.generation_config.max_output_tokens: must be positive")
    count = _get(config, "candidateCount", "candidate_count", 1) or 1
    parts = prompt_parts(body)
    total = prompt_tokens(parts)
    cached, digests = ctx.cached_block_tokens(parts, total)
    thoughts = _thoughts(request.model, config)
    schema, json_mode = _schema(config)
    answers = [
        complete(
            ctx.config.seed,
            request.model,
            prompt_seed(parts),
            index,
            limit=limit,
            reasoning=thoughts,
            exact_tokens=ctx.options.output_tokens,
            schema=schema,
            json_mode=json_mode,
        )
        for index in range(count)
    ]
    usage = Usage(
        input_tokens=total,
        output_tokens=sum(a.output_tokens for a in answers),
        cache_read_tokens=cached,
        reasoning_tokens=sum(a.reasoning_tokens for a in answers),
    )
    ctx.admit({"requests": 1, "tokens": usage.total_tokens})
    ctx.store_prefixes(digests)
    include_thoughts = bool(
        _get(_get(config, "thinkingConfig", "thinking_config"), "includeThoughts", "include_thoughts")
    )
    summary = (
        lorem(rng_for(ctx.config.seed, "thoughts", prompt_seed(parts)), 80) if include_thoughts and thoughts else None
    )
    meta = {"modelVersion": request.model, "responseId": ctx.new_id(22, BASE62)}
    if request.api == "streamGenerateContent":
        chunks = _chunks(answers, usage, summary, meta)
        if request.query.get("alt") == "sse":
            events = ((sse(chunk, crlf=True), cost) for chunk, cost in chunks)
            return StreamReply(events, content_type="text/event-stream", usage=usage)
        collected = [chunk for chunk, _ in chunks]
        reply = json_reply(collected)
        reply.output_tokens, reply.usage = usage.output_tokens, usage
        return reply
    candidates = [_candidate(i, a, a.text, summary, final=True) for i, a in enumerate(answers)]
    text_tokens = sum(a.text_tokens for a in answers)
    reply = json_reply({"candidates": candidates, "usageMetadata": usage_metadata(usage, text_tokens), **meta})
    reply.output_tokens, reply.usage = usage.output_tokens, usage
    return reply


def _candidate(index: int, answer: Completion, text: str, summary: str | None, *, final: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if summary:
        parts.append({"text": summary, "thought": True})
    if text:
        parts.append({"text": text})
    content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
    candidate: dict[str, Any] = {"content": content}
    if final:
        candidate["finishReason"] = "MAX_TOKENS" if answer.truncated else "STOP"
    candidate["index"] = index
    return candidate


def _chunks(
    answers: list[Completion], usage: Usage, summary: str | None, meta: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], int]]:
    """Stream chunks, a few words each, with running usage totals on every one."""
    emitted = 0  # candidate tokens sent so far (running total)
    for index, answer in enumerate(answers):
        words = pieces(answer.text)
        groups = ["".join(words[i : i + _WORDS_PER_CHUNK]) for i in range(0, len(words), _WORDS_PER_CHUNK)] or [""]
        sent = ""
        for position, group in enumerate(groups):
            sent += group
            last = position == len(groups) - 1
            running = emitted + count_tokens(sent)
            thought = summary if position == 0 else None
            chunk = {
                "candidates": [_candidate(index, answer, group, thought, final=last)],
                "usageMetadata": usage_metadata(usage, running),
                **meta,
            }
            # thinking happens before the first visible words
            cost = count_tokens(group) + (answer.reasoning_tokens if position == 0 else 0)
            yield chunk, cost
        emitted += answer.text_tokens


def count_tokens_endpoint(request: MockRequest, ctx: Context) -> Reply:
    body = request.body
    inner = _get(body, "generateContentRequest", "generate_content_request") or body
    return json_reply({"totalTokens": prompt_tokens(prompt_parts(inner))})


def embed(request: MockRequest, ctx: Context) -> Reply:
    """`:embedContent` (one `content`) and `:batchEmbedContents` (`requests[]`)."""
    body = request.body
    if request.api == "batchEmbedContents":
        items = _get(body, "requests", "requests")
        if not isinstance(items, list) or not items:
            raise MockError("bad_request", "* BatchEmbedContentsRequest.requests: requests is not specified")
    else:
        items = [body]
    vectors = []
    tokens = 0
    for item in items:
        content = _get(item, "content", "content")
        if content is None:
            raise MockError("bad_request", "* EmbedContentRequest.content: content is not specified")
        text = prompt_seed(_content_parts(content))
        tokens += prompt_tokens(_content_parts(content))
        dimensions = _get(item, "outputDimensionality", "output_dimensionality") or (
            768 if "text-embedding" in request.model else 3072
        )
        vectors.append({"values": embedding(text, int(dimensions), ctx.config.seed)})
    ctx.admit({"requests": 1, "tokens": tokens})
    reply = json_reply({"embeddings": vectors} if request.api == "batchEmbedContents" else {"embedding": vectors[0]})
    reply.usage = Usage(input_tokens=tokens, output_tokens=0)
    return reply
