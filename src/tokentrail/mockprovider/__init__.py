"""A local mock LLM provider speaking the OpenAI, Azure OpenAI, Anthropic and Gemini wire
formats, for `tokentrail demo` and for tests over real loopback HTTP.

    with MockProvider(port=0) as mock:
        client = openai.OpenAI(base_url=mock.openai_base_url, api_key="test")

Token counts are deterministic (`count_tokens`: 4 characters per token), repeated long prompts
hit the prompt cache, reasoning models report reasoning tokens, and latency, errors and rate
limits are configurable (`MockConfig`). This package imports nothing of tokentrail but `core`.
"""

from __future__ import annotations

from tokentrail.mockprovider.config import ERROR_KINDS, MockConfig
from tokentrail.mockprovider.content import REASONING_BY_EFFORT, reasoning_for
from tokentrail.mockprovider.headers import go_duration
from tokentrail.mockprovider.server import DEFAULT_HOST, DEFAULT_PORT, MockProvider
from tokentrail.mockprovider.state import MockCall, Usage
from tokentrail.mockprovider.tokens import count_tokens

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ERROR_KINDS",
    "REASONING_BY_EFFORT",
    "MockCall",
    "MockConfig",
    "MockProvider",
    "Usage",
    "count_tokens",
    "go_duration",
    "reasoning_for",
]
