from __future__ import annotations

import pytest

from tokentrail.core import ModelOperation, normalize_provider


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("azure", "azure.ai.openai"),
        ("azure_openai", "azure.ai.openai"),
        ("azure-openai", "azure.ai.openai"),
        ("anthropic", "anthropic"),
        ("claude", "anthropic"),
        ("bedrock", "aws.bedrock"),
        ("aws_bedrock", "aws.bedrock"),
        ("aws-bedrock", "aws.bedrock"),
        ("vertex", "gcp.vertex_ai"),
        ("vertexai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("google", "gcp.gemini"),
        ("mistral", "mistral_ai"),
        ("mistralai", "mistral_ai"),
        ("cohere", "cohere"),
        ("together", "together"),
        ("togetherai", "together"),
        ("groq", "groq"),
        ("ollama", "ollama"),
        ("deepseek", "deepseek"),
        ("x_ai", "x_ai"),
        (" Groq ", "groq"),
        ("my-inhouse-llm", "my-inhouse-llm"),
    ],
)
def test_spec_section_3_aliases(spelling, expected):
    assert normalize_provider(spelling) == expected


def test_normalisation_is_idempotent():
    for name in ("azure", "claude", "bedrock", "vertex", "google", "mistral", "togetherai"):
        once = normalize_provider(name)
        assert normalize_provider(once) == once


def test_operations_cover_the_spec():
    assert {op.value for op in ModelOperation} == {
        "chat",
        "text_completion",
        "embeddings",
        "generate_content",
        "execute_tool",
        "create_agent",
        "invoke_agent",
        "invoke_workflow",
        "rerank",
        "image_generation",
        "speech_to_text",
        "text_to_speech",
        "ocr",
    }
