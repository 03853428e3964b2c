"""A realistic set of provider responses, in each provider's own wire format, for `tokentrail demo`.

Each body follows the shapes documented in PROVIDERS.md; the point of the demo is that every
provider's own accounting convention goes in and one exact, comparable cost comes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class DemoCall:
    label: str
    provider: str
    model: str
    api: str
    body: Any  # a parsed JSON body, or the list of parsed stream events
    service_tier: str | None = None
    at: datetime | None = None
    user: str = "alice"
    feature: str = "chat"


DEMO_CALLS: tuple[DemoCall, ...] = (
    DemoCall(
        "OpenAI chat, long cached system prompt",
        "openai",
        "gpt-4o",
        "chat.completions",
        {
            "id": "chatcmpl-demo1",
            "object": "chat.completion",
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "..."}}],
            "usage": {
                "prompt_tokens": 4020,
                "completion_tokens": 310,
                "total_tokens": 4330,
                "prompt_tokens_details": {"cached_tokens": 3968, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
        },
        user="alice",
        feature="support-bot",
    ),
    DemoCall(
        "OpenAI o3-mini, reasoning billed as output",
        "openai",
        "o3-mini",
        "chat.completions",
        {
            "id": "chatcmpl-demo2",
            "object": "chat.completion",
            "model": "o3-mini-2025-01-31",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "..."}}],
            "usage": {
                "prompt_tokens": 1240,
                "completion_tokens": 2320,
                "total_tokens": 3560,
                "completion_tokens_details": {"reasoning_tokens": 1792},
            },
        },
        user="bob",
        feature="planner",
    ),
    DemoCall(
        "OpenAI Responses stream on the flex tier",
        "openai",
        "gpt-5",
        "responses",
        [
            {"type": "response.created", "response": {"id": "resp_demo3", "status": "in_progress", "usage": None}},
            {"type": "response.output_text.delta", "delta": "Hel"},
            {
                "type": "response.completed",
                "response": {
                    "id": "resp_demo3",
                    "model": "gpt-5-2025-08-07",
                    "status": "completed",
                    "service_tier": "flex",
                    "usage": {
                        "input_tokens": 1493,
                        "input_tokens_details": {"cached_tokens": 1280},
                        "output_tokens": 125,
                        "output_tokens_details": {"reasoning_tokens": 64},
                        "total_tokens": 1618,
                    },
                },
            },
        ],
        service_tier="flex",
        user="bob",
        feature="batch-summaries",
    ),
    DemoCall(
        "Anthropic, 1-hour cache write plus cache read",
        "anthropic",
        "claude-sonnet-4-5",
        "messages",
        {
            "id": "msg_demo4",
            "type": "message",
            "model": "claude-sonnet-4-5-20250929",
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 3,
                "cache_creation_input_tokens": 418,
                "cache_read_input_tokens": 1111,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 418},
                "output_tokens": 512,
            },
        },
        user="carol",
        feature="support-bot",
    ),
    DemoCall(
        "Anthropic stream: cumulative deltas overwrite, never add",
        "anthropic",
        "claude-haiku-4-5",
        "messages",
        [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_demo5",
                    "model": "claude-haiku-4-5",
                    "usage": {"input_tokens": 2200, "cache_read_input_tokens": 0, "output_tokens": 1},
                },
            },
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 180}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 356}},
            {"type": "message_stop"},
        ],
        user="carol",
        feature="autocomplete",
    ),
    DemoCall(
        "Gemini 2.5 Pro above 200k: whole request at the long-context rate, thoughts billed",
        "gemini",
        "gemini-2.5-pro",
        "generateContent",
        {
            "responseId": "demo6",
            "modelVersion": "gemini-2.5-pro",
            "candidates": [{"finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": 240_000,
                "cachedContentTokenCount": 200_000,
                "candidatesTokenCount": 900,
                "thoughtsTokenCount": 1400,
                "totalTokenCount": 242_300,
            },
        },
        user="dave",
        feature="contract-review",
    ),
    DemoCall(
        "Bedrock Converse, US cross-region profile (regional rate)",
        "bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "..."}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": 3,
                "outputTokens": 61,
                "totalTokens": 2435,
                "cacheReadInputTokens": 2074,
                "cacheWriteInputTokens": 297,
                "cacheReadInputTokenCount": 2074,
                "cacheWriteInputTokenCount": 297,
            },
            "metrics": {"latencyMs": 1830},
        },
        user="erin",
        feature="support-bot",
    ),
    DemoCall(
        "DeepSeek, cache hit reported flat",
        "deepseek",
        "deepseek-chat",
        "chat.completions",
        {
            "id": "demo8",
            "object": "chat.completion",
            "model": "deepseek-chat",
            "choices": [{"index": 0, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 6000,
                "completion_tokens": 700,
                "total_tokens": 6700,
                "prompt_cache_hit_tokens": 5120,
                "prompt_cache_miss_tokens": 880,
            },
        },
        user="alice",
        feature="planner",
    ),
    DemoCall(
        "OpenAI embeddings",
        "openai",
        "text-embedding-3-small",
        "embeddings",
        {
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [],
            "usage": {"prompt_tokens": 8192, "total_tokens": 8192},
        },
        user="indexer",
        feature="search-index",
    ),
    DemoCall(
        "An in-house model nobody priced: unpriced, never $0",
        "openai",
        "acme-private-llm-7b",
        "chat.completions",
        {
            "id": "demo10",
            "object": "chat.completion",
            "model": "acme-private-llm-7b",
            "choices": [{"index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
        },
        user="bob",
        feature="experiments",
    ),
)
