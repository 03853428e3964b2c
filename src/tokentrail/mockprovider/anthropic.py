"""Anthropic Messages wire format (PROVIDERS.md A.5): `POST /v1/messages`, plain and streamed,
and `POST /v1/messages/count_tokens`.

`input_tokens` EXCLUDES `cache_creation_input_tokens` and `cache_read_input_tokens`;
`output_tokens` includes thinking (`output_tokens_details.thinking_tokens`, sent when the
request enables `thinking`). Streams: `message_start` carries the input side and a
placeholder `output_tokens: 1`; `message_delta.usage` is cumulative.

Caching follows the request's `cache_control` breakpoints (on tools, system blocks and message
blocks, or the top-level `cache_control` that caches the whole prompt): the longest breakpoint
prefix seen before is read, the rest up to the last breakpoint is written. A breakpoint whose
prefix is shorter than `cache_min_tokens` caches nothing, as on the real API. When a request
marks nothing, a system prompt of at least `cache_min_tokens` is cached as if it were marked
(`auto_cache_system`, on by default), so repeated long system prompts show cache reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tokentrail.mockprovider.content import Completion, complete, lorem, pieces, reasoning_for, rng_for
from tokentrail.mockprovider.exchange import Context, MockError, MockRequest, Reply, StreamReply, json_reply, sse
from tokentrail.mockprovider.headers import BASE62, anthropic_rate_headers
from tokentrail.mockprovider.state import Usage
from tokentrail.mockprovider.tokens import (
    Part,
    as_text,
    breakpoint_boundaries,
    count_tokens,
    prefix_hashes,
    prompt_seed,
    prompt_tokens,
)


def _ttl(block: Any) -> str | None:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(control, dict):
        return None
    return "1h" if control.get("ttl") == "1h" else "5m"


def _blocks(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [Part(content)]
    parts: list[Part] = []
    if isinstance(content, list):
        for block in content:
            text = block.get("text") if isinstance(block, dict) else None
            if not isinstance(text, str):
                text = as_text(
                    {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block
                )
            parts.append(Part(text, _ttl(block)))
    return parts


def prompt_parts(request: MockRequest, min_tokens: int, auto_cache_system: bool) -> list[Part]:
    """Tools, system, messages: Anthropic's prompt order, which is also its cache prefix order."""
    head = [_tool_part(tool) for tool in request.field("tools") or [] if isinstance(tool, dict)]
    head.extend(_blocks(request.field("system")))
    system_given = len(head) > 0 and bool(request.field("system"))
    body: list[Part] = []
    for message in request.field("messages") or []:
        body.extend(_blocks(message.get("content") if isinstance(message, dict) else message))
    top = request.field("cache_control")
    if isinstance(top, dict) and (head or body):
        # automatic caching: the breakpoint moves to the last block of the prompt
        parts = head + body
        parts[-1] = Part(parts[-1].text, _ttl({"cache_control": top}))
        return parts
    marked = any(part.cache_ttl for part in head + body)
    if not marked and auto_cache_system and system_given and prompt_tokens(head) >= min_tokens:
        head[-1] = Part(head[-1].text, "5m")
    return head + body


def _tool_part(tool: dict[str, Any]) -> Part:
    return Part(as_text({k: v for k, v in tool.items() if k != "cache_control"}), _ttl(tool))


def cache_split(parts: list[Part], read: int, breakpoints: list[tuple[int, str]]) -> tuple[int, int]:
    """(tokens written, of which with a 1-hour TTL): every breakpoint segment past the read prefix."""
    written = written_1h = 0
    previous = read
    for offset, ttl in breakpoints:
        if offset <= previous:
            continue
        written += offset - previous
        if ttl == "1h":
            written_1h += offset - previous
        previous = offset
    return written, written_1h


def _thinking_tokens(request: MockRequest, limit: int) -> int | None:
    """Thinking tokens the answer spends, or None when thinking is off."""
    thinking = request.field("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return None
    spent = reasoning_for(None)
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise MockError("bad_request", "thinking.enabled.budget_tokens: Field required", param="thinking")
        if budget >= limit:
            raise MockError("bad_request", "`max_tokens` must be greater than `thinking.budget_tokens`.")
        spent = min(spent, budget)
    return spent


def _validate(request: MockRequest) -> int:
    limit = request.field("max_tokens")
    if limit is None:
        raise MockError("bad_request", "max_tokens: Field required")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise MockError("bad_request", "max_tokens: Input should be a valid integer of at least 1")
    messages = request.field("messages")
    if not isinstance(messages, list) or not messages:
        raise MockError("bad_request", "messages: Field required")
    return limit


def messages(request: MockRequest, ctx: Context) -> Reply | StreamReply:
    limit = _validate(request)
    minimum = max(1, ctx.config.cache_min_tokens)
    parts = prompt_parts(request, minimum, ctx.config.auto_cache_system)
    total = prompt_tokens(parts)
    breakpoints = breakpoint_boundaries(parts, minimum)
    digests = prefix_hashes(parts, [offset for offset, _ in breakpoints])
    scope = (request.provider, request.model)
    read = ctx.state.cache.longest_hit(scope, digests)
    written, written_1h = cache_split(parts, read, breakpoints)
    thinking = _thinking_tokens(request, limit)
    answer = complete(
        ctx.config.seed,
        request.model,
        prompt_seed(parts),
        limit=limit,
        reasoning=thinking or 0,
        exact_tokens=ctx.options.output_tokens,
    )
    usage = Usage(
        input_tokens=total,
        output_tokens=answer.output_tokens,
        cache_read_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=answer.reasoning_tokens,
        cache_write_1h_tokens=written_1h,
    )
    billed_input = total - read  # cache reads do not count against the input-token limit
    readings = ctx.admit(
        {
            "requests": 1,
            "tokens": billed_input + usage.output_tokens,
            "input-tokens": billed_input,
            "output-tokens": usage.output_tokens,
        }
    )
    ctx.store_prefixes(digests)
    headers = [("request-id", request.request_id), *anthropic_rate_headers(readings)]
    message: dict[str, Any] = {
        "id": f"msg_01{ctx.new_id(22, BASE62)}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    thinking_text = _thinking_summary(ctx, parts, answer) if thinking is not None else None
    if request.field("stream"):
        events = _stream(message, answer, usage, thinking_text, thinking is not None)
        return StreamReply(events, headers, usage=usage)
    content: list[dict[str, Any]] = []
    if thinking_text is not None:
        content.append({"type": "thinking", "thinking": thinking_text, "signature": _signature(thinking_text)})
    if answer.text or not answer.truncated:
        content.append({"type": "text", "text": answer.text})
    body = {
        **message,
        "content": content,
        "stop_reason": "max_tokens" if answer.truncated else "end_turn",
        "usage": message_usage(usage, thinking is not None),
    }
    reply = json_reply(body, headers)
    reply.output_tokens, reply.usage = usage.output_tokens, usage
    return reply


def count_tokens_endpoint(request: MockRequest, ctx: Context) -> Reply:
    if not isinstance(request.field("messages"), list):
        raise MockError("bad_request", "messages: Field required")
    parts = prompt_parts(request, max(1, ctx.config.cache_min_tokens), False)
    return json_reply({"input_tokens": prompt_tokens(parts)}, [("request-id", request.request_id)])


def message_usage(usage: Usage, thinking: bool, *, placeholder_output: bool = False) -> dict[str, Any]:
    """The wire usage: `input_tokens` without the cache counts."""
    out: dict[str, Any] = {
        "input_tokens": usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens - usage.cache_write_1h_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        },
        "output_tokens": 1 if placeholder_output else usage.output_tokens,
        "service_tier": "standard",
    }
    if thinking and not placeholder_output:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def _thinking_summary(ctx: Context, parts: list[Part], answer: Completion) -> str:
    """The summarized thinking text Claude 4 returns (shorter than the thinking it bills)."""
    rng = rng_for(ctx.config.seed, "thinking", prompt_seed(parts))
    return lorem(rng, min(answer.reasoning_tokens, 40) * 4)


def _signature(text: str) -> str:
    return "Eq" + rng_for("signature", text).randbytes(48).hex()


def _stream(
    message: dict[str, Any], answer: Completion, usage: Usage, thinking_text: str | None, thinking: bool
) -> Iterator[tuple[bytes, int]]:
    start = {**message, "usage": message_usage(usage, thinking, placeholder_output=True)}
    yield sse({"type": "message_start", "message": start}, "message_start"), 0
    index = 0
    if thinking_text is not None:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        yield sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start"), 0
        for position, piece in enumerate(pieces(thinking_text)):
            delta = {"type": "thinking_delta", "thinking": piece}
            # the hidden part of the thinking is paced before its first visible words
            cost = answer.reasoning_tokens if position == 0 else 0
            yield sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"), cost
        signature = {"type": "signature_delta", "signature": _signature(thinking_text)}
        yield sse({"type": "content_block_delta", "index": index, "delta": signature}, "content_block_delta"), 0
        yield sse({"type": "content_block_stop", "index": index}, "content_block_stop"), 0
        index += 1
    if answer.text or not answer.truncated:
        block = {"type": "text", "text": ""}
        yield sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start"), 0
        yield sse({"type": "ping"}, "ping"), 0
        for piece in pieces(answer.text):
            delta = {"type": "text_delta", "text": piece}
            yield (
                sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"),
                count_tokens(piece),
            )
        yield sse({"type": "content_block_stop", "index": index}, "content_block_stop"), 0
    final = message_usage(usage, thinking)
    delta_usage = {
        key: final[key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    if "output_tokens_details" in final:
        delta_usage["output_tokens_details"] = final["output_tokens_details"]
    stop = {"stop_reason": "max_tokens" if answer.truncated else "end_turn", "stop_sequence": None}
    yield sse({"type": "message_delta", "delta": stop, "usage": delta_usage}, "message_delta"), 0
    yield sse({"type": "message_stop"}, "message_stop"), 0
