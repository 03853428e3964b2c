"""Provider adapters: each module turns one provider's responses into a normalised `TokenUsage`.

`extract_usage(response, provider, api=None)` accepts an SDK response object, a parsed JSON
body, or the ordered list of parsed stream chunks/events of one streamed response.
It returns `None` when the provider reported no usage (unknown, never zeros) and raises
`ValidationError` only when reported counts break the accounting invariants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokentrail.core import TokenUsage, normalize_provider
from tokentrail.providers import anthropic, bedrock, cohere, gemini, openai

Extractor = Callable[[Any, "str | None"], "TokenUsage | None"]

# normalised provider name -> the module that reads its wire format
_EXTRACTORS: dict[str, Extractor] = {
    "openai": openai.extract,
    "azure.ai.openai": openai.extract,
    "deepseek": openai.extract,
    "mistral_ai": openai.extract,
    "groq": openai.extract,
    "together": openai.extract,
    "x_ai": openai.extract,
    "openrouter": openai.extract,
    "ollama": openai.extract,
    "vllm": openai.extract,
    "perplexity": openai.extract,
    "fireworks": openai.extract,
    "anthropic": anthropic.extract,
    "gcp.gemini": gemini.extract,
    "gcp.vertex_ai": gemini.extract,
    "aws.bedrock": bedrock.extract,
    "cohere": cohere.extract,
}


def extract_usage(response: Any, provider: str, api: str | None = None) -> TokenUsage | None:
    """Normalised usage of one response (or one stream's chunks) from `provider`.

    Unknown providers are read with the OpenAI-compatible rules, the de facto wire format.
    """
    extractor = _EXTRACTORS.get(normalize_provider(provider), openai.extract)
    return extractor(response, api)


__all__ = ["extract_usage"]
