"""Operation and provider names (SPEC §1 operations, SPEC §3 provider normalisation)."""

from __future__ import annotations

from enum import StrEnum


class ModelOperation(StrEnum):
    """`gen_ai.operation.name` values, plus the ones tokentrail adds (ocr, rerank, ...)."""

    CHAT = "chat"
    TEXT_COMPLETION = "text_completion"
    EMBEDDINGS = "embeddings"
    GENERATE_CONTENT = "generate_content"
    EXECUTE_TOOL = "execute_tool"
    CREATE_AGENT = "create_agent"
    INVOKE_AGENT = "invoke_agent"
    INVOKE_WORKFLOW = "invoke_workflow"
    RERANK = "rerank"
    IMAGE_GENERATION = "image_generation"
    SPEECH_TO_TEXT = "speech_to_text"
    TEXT_TO_SPEECH = "text_to_speech"
    OCR = "ocr"


# OpenTelemetry `gen_ai.provider.name` values and the spellings people use for them.
_PROVIDER_ALIASES: dict[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure-openai": "azure.ai.openai",
    "azure.ai.openai": "azure.ai.openai",
    "azureopenai": "azure.ai.openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "aws-bedrock": "aws.bedrock",
    "aws.bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "gcp.gemini": "gcp.gemini",
    "google_genai": "gcp.gemini",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistral_ai": "mistral_ai",
    "cohere": "cohere",
    "together": "together",
    "togetherai": "together",
    "together_ai": "together",
    "groq": "groq",
    "ollama": "ollama",
    "deepseek": "deepseek",
    "x_ai": "x_ai",
    "xai": "x_ai",
    "x-ai": "x_ai",
    "grok": "x_ai",
    "openrouter": "openrouter",
    "vllm": "vllm",
    "perplexity": "perplexity",
    "fireworks": "fireworks",
}


def normalize_provider(name: str) -> str:
    """Map a provider spelling to its OpenTelemetry name; unknown names pass through lower-cased."""
    key = name.strip().lower()
    known = _PROVIDER_ALIASES.get(key)
    if known is not None:
        return known
    return _PROVIDER_ALIASES.get(key.replace(" ", "_"), key)


KNOWN_PROVIDERS: frozenset[str] = frozenset(_PROVIDER_ALIASES.values())
