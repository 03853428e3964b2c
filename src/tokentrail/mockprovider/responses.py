"""OpenAI Responses API (PROVIDERS.md A.2): `POST /v1/responses`, plain and streamed.

Usage: `input_tokens` includes `input_tokens_details.cached_tokens`, `output_tokens` includes
`output_tokens_details.reasoning_tokens`. Streams send `response.created` and
`response.in_progress` with `usage: null`, the output item/part/text events, then
`response.completed` (or `response.incomplete` when `max_output_tokens` cut the answer) with
the usage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tokentrail.mockprovider.content import Completion, pieces, reasoning_for
from tokentrail.mockprovider.exchange import Context, MockError, MockRequest, Reply, StreamReply, json_reply, sse
from tokentrail.mockprovider.openai import (
    generate,
    is_reasoning_model,
    max_tokens,
    message_parts,
    response_headers,
    service_tier,
)
from tokentrail.mockprovider.state import Usage
from tokentrail.mockprovider.tokens import Part, as_text, count_tokens, prompt_tokens

_HEX = "0123456789abcdef"


def input_parts(request: MockRequest) -> list[Part]:
    """Instructions, tools, then the input (a string or a list of items)."""
    parts: list[Part] = []
    instructions = request.field("instructions")
    if isinstance(instructions, str) and instructions:
        parts.append(Part(instructions))
    tools = request.field("tools")
    if tools:
        parts.append(Part(as_text(tools)))
    raw = request.field("input")
    if isinstance(raw, str):
        parts.append(Part(raw))
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and "content" in item:
                parts.extend(message_parts([item]))
            elif isinstance(item, dict) and isinstance(item.get("output"), str):
                parts.append(Part(item["output"]))  # function_call_output
            else:
                parts.append(Part(as_text(item)))
    return parts


def _schema(request: MockRequest) -> tuple[Any, bool]:
    text = request.field("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None, False
    if fmt.get("type") == "json_schema":
        return fmt.get("schema") or {}, True
    return None, fmt.get("type") == "json_object"


def create(request: MockRequest, ctx: Context) -> Reply | StreamReply:
    raw = request.field("input")
    if raw is None or raw == "" or raw == []:
        raise MockError("bad_request", "Missing required parameter: 'input'.", param="input")
    parts = input_parts(request)
    total = prompt_tokens(parts)
    cached, digests = ctx.cached_block_tokens(parts, total)
    limit = max_tokens(request, "max_output_tokens")
    reasoning_param = request.field("reasoning")
    effort = reasoning_param.get("effort") if isinstance(reasoning_param, dict) else None
    reasoning_model = is_reasoning_model(request.model)
    schema, json_mode = _schema(request)
    answer = generate(ctx, parts, 0, limit, reasoning_for(effort) if reasoning_model else 0, schema, json_mode)
    usage = Usage(
        input_tokens=total,
        output_tokens=answer.output_tokens,
        cache_read_tokens=cached,
        reasoning_tokens=answer.reasoning_tokens,
    )
    readings = ctx.admit({"requests": 1, "tokens": usage.total_tokens})
    ctx.store_prefixes(digests)
    headers = response_headers(ctx, readings)
    shell = _shell(request, ctx, effort if reasoning_model else None)
    ids = {
        "reasoning": f"rs_{ctx.new_id(48, _HEX)}" if reasoning_model else None,
        "message": f"msg_{ctx.new_id(48, _HEX)}",
    }
    if request.field("stream"):
        return StreamReply(_stream(shell, answer, usage, ids), headers, usage=usage)
    body = _finished(shell, answer, usage, ids)
    reply = json_reply(body, headers)
    reply.output_tokens, reply.usage = usage.output_tokens, usage
    return reply


def response_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _shell(request: MockRequest, ctx: Context, effort: Any) -> dict[str, Any]:
    """The response object as `response.created` shows it (no output, no usage yet)."""
    text = request.field("text")
    return {
        "id": f"resp_{ctx.new_id(48, _HEX)}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.field("instructions"),
        "max_output_tokens": request.field("max_output_tokens"),
        "max_tool_calls": None,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": request.field("previous_response_id"),
        "prompt_cache_key": request.field("prompt_cache_key"),
        "reasoning": {"effort": effort, "summary": None},
        "safety_identifier": None,
        "service_tier": service_tier(request),
        "store": request.field("store", True),
        "temperature": request.field("temperature", 1.0),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": request.field("tool_choice", "auto"),
        "tools": request.field("tools") or [],
        "top_logprobs": 0,
        "top_p": request.field("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": request.field("metadata") or {},
    }


def _reasoning_item(ids: dict[str, str | None]) -> dict[str, Any]:
    return {"id": ids["reasoning"], "type": "reasoning", "summary": []}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(ids: dict[str, str | None], text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {"id": ids["message"], "type": "message", "status": status, "content": content, "role": "assistant"}


def _output(answer: Completion, ids: dict[str, str | None]) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = []
    if ids["reasoning"]:
        output.append(_reasoning_item(ids))
    if answer.text or not answer.truncated:
        output.append(_message_item(ids, answer.text, "incomplete" if answer.truncated else "completed"))
    return output


def _finished(shell: dict[str, Any], answer: Completion, usage: Usage, ids: dict[str, str | None]) -> dict[str, Any]:
    return {
        **shell,
        "status": "incomplete" if answer.truncated else "completed",
        "completed_at": None if answer.truncated else int(time.time()),
        "incomplete_details": {"reason": "max_output_tokens"} if answer.truncated else None,
        "output": _output(answer, ids),
        "usage": response_usage(usage),
    }


def _stream(
    shell: dict[str, Any], answer: Completion, usage: Usage, ids: dict[str, str | None]
) -> Iterator[tuple[bytes, int]]:
    sequence = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal sequence
        data = {"type": kind, **fields, "sequence_number": sequence}
        sequence += 1
        return sse(data, kind)

    yield event("response.created", response=shell), 0
    yield event("response.in_progress", response=shell), 0
    index = 0
    if ids["reasoning"]:
        yield event("response.output_item.added", item=_reasoning_item(ids), output_index=index), 0
        yield event("response.output_item.done", item=_reasoning_item(ids), output_index=index), answer.reasoning_tokens
        index += 1
    if answer.text or not answer.truncated:
        item_id = ids["message"]
        yield event("response.output_item.added", item=_message_item(ids, None, "in_progress"), output_index=index), 0
        yield (
            event(
                "response.content_part.added", content_index=0, item_id=item_id, output_index=index, part=_text_part("")
            ),
            0,
        )
        for piece in pieces(answer.text):
            yield (
                event(
                    "response.output_text.delta",
                    content_index=0,
                    delta=piece,
                    item_id=item_id,
                    logprobs=[],
                    output_index=index,
                ),
                count_tokens(piece),
            )
        yield (
            event(
                "response.output_text.done",
                content_index=0,
                item_id=item_id,
                logprobs=[],
                output_index=index,
                text=answer.text,
            ),
            0,
        )
        yield (
            event(
                "response.content_part.done",
                content_index=0,
                item_id=item_id,
                output_index=index,
                part=_text_part(answer.text),
            ),
            0,
        )
        status = "incomplete" if answer.truncated else "completed"
        yield event("response.output_item.done", item=_message_item(ids, answer.text, status), output_index=index), 0
    final = _finished(shell, answer, usage, ids)
    yield event("response.incomplete" if answer.truncated else "response.completed", response=final), 0
