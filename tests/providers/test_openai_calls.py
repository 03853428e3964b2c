"""The OpenAI wire format beyond usage: providers from base URLs, request parameters,
response_format schemas, response metadata."""

from __future__ import annotations

import pytest
from openai import NOT_GIVEN, omit
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from tokentrail.providers.openai_calls import (
    azure_deployment,
    describe_endpoint,
    extra_parameters,
    include_usage_requested,
    output_text,
    request_parameters,
    response_facts,
    schema_of_format,
    with_stream_usage,
)


@pytest.mark.parametrize(
    ("url", "provider", "port"),
    [
        ("https://api.openai.com/v1", "openai", 443),
        ("https://api.deepseek.com", "deepseek", 443),
        ("https://api.groq.com/openai/v1", "groq", 443),
        ("https://api.together.xyz/v1", "together", 443),
        ("https://api.mistral.ai/v1", "mistral_ai", 443),
        ("https://api.x.ai/v1", "x_ai", 443),
        ("https://openrouter.ai/api/v1", "openrouter", 443),
        ("http://localhost:11434/v1", "ollama", 11434),
        ("http://gpu-box:11434/v1", "ollama", 11434),
        ("http://localhost:8000/v1", "vllm", 8000),
        ("https://contoso.openai.azure.com/openai", "azure.ai.openai", 443),
        ("https://contoso.cognitiveservices.azure.com/openai/deployments/d1", "azure.ai.openai", 443),
        ("https://gateway.example.com/openai/deployments/d2", "azure.ai.openai", 443),
    ],
)
def test_provider_from_base_url(url, provider, port):
    import httpx2

    parsed = httpx2.URL(url)
    service = describe_endpoint(parsed.scheme, parsed.host, parsed.port, parsed.path)
    assert service.provider == provider
    assert service.server_port == port and service.server_address == parsed.host


def test_compatible_name_and_azure_client():
    assert describe_endpoint("http", "127.0.0.1", 9000, "/v1", compatible_provider="Together AI").provider == "together"
    assert describe_endpoint("https", "proxy.corp", None, "/v1", azure_client=True).provider == "azure.ai.openai"
    assert describe_endpoint("https", "proxy.corp", None, "/v1").provider == "vllm"


def test_azure_deployment_from_path():
    assert azure_deployment("/openai/deployments/my-gpt4o/chat/completions") == "my-gpt4o"
    assert azure_deployment("/openai/deployments/my-gpt4o") == "my-gpt4o"
    assert azure_deployment("/openai/deployments/") is None
    assert azure_deployment("/v1/chat/completions") is None
    assert describe_endpoint("https", "x.openai.azure.com", None, "/openai/deployments/dep").deployment == "dep"
    assert describe_endpoint("https", "x.example", None, "/v1/deployments/dep").deployment is None  # not Azure


def test_request_parameters_by_record_field():
    params = request_parameters(
        {
            "temperature": 0,
            "top_p": 0.9,
            "max_completion_tokens": 100,
            "max_tokens": 50,
            "stop": "END",
            "seed": -7,
            "n": 2,
            "stream": True,
            "service_tier": "flex",
            "frequency_penalty": 0.5,
            "presence_penalty": -0.5,
            "top_k": 40,
            "model": "m",
            "messages": [],
        }
    )
    assert params == {
        "temperature": 0,
        "top_p": 0.9,
        "max_tokens": 100,  # max_completion_tokens is listed first: the modern name wins
        "stop_sequences": ["END"],
        "seed": -7,
        "n": 2,
        "stream": True,
        "service_tier": "flex",
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "top_k": 40,
    }
    assert request_parameters({"max_output_tokens": 300, "stop": ("a", "b")}) == {
        "max_tokens": 300,
        "stop_sequences": ["a", "b"],
    }


def test_request_parameters_skip_sentinels_and_bad_types():
    assert request_parameters({"temperature": NOT_GIVEN, "top_p": omit, "seed": None}) == {}
    bad = {
        "temperature": "hot",
        "n": -1,
        "max_tokens": 1.5,
        "stop": [1],
        "stream": "yes",
        "seed": True,
        "top_p": float("nan"),
    }
    assert request_parameters(bad) == {}


def test_extra_parameters():
    assert extra_parameters({"reasoning_effort": "high", "dimensions": 256}) == {
        "reasoning_effort": "high",
        "dimensions": 256,
    }
    assert extra_parameters({"reasoning": {"effort": "low", "summary": "auto"}}) == {"reasoning_effort": "low"}
    assert extra_parameters({"verbosity": NOT_GIVEN}) is None


def test_stream_usage_option():
    assert not include_usage_requested({"stream": True})
    assert not include_usage_requested({"stream_options": {"include_usage": False}})
    assert include_usage_requested({"stream_options": {"include_usage": True}})
    original = {"model": "m", "stream_options": {"include_obfuscation": False}}
    changed = with_stream_usage(original)
    assert changed["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert original["stream_options"] == {"include_obfuscation": False}  # the caller's dict is not touched


def test_schema_of_format():
    schema = {"type": "object", "properties": {}}
    assert schema_of_format({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}) == schema
    assert schema_of_format({"type": "json_schema", "name": "x", "schema": schema}) == schema  # Responses text.format
    assert schema_of_format({"type": "json_object"}) is None
    assert schema_of_format({"type": "json_schema", "json_schema": {"name": "x"}}) is None
    assert schema_of_format("json") is None


TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
CHAT = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_9",
    "service_tier": "flex",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"},
        {
            "index": 1,
            "message": {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            "finish_reason": "tool_calls",
        },
    ],
}


@pytest.mark.parametrize("response", [CHAT, ChatCompletion.model_validate(CHAT)])
def test_chat_response_facts_from_json_or_sdk_object(response):
    facts = response_facts(response, "chat.completions")
    assert facts.response_id == "chatcmpl-9" and facts.model == "gpt-4o-2024-08-06"
    assert facts.finish_reason == "stop,tool_calls"
    assert facts.system_fingerprint == "fp_9" and facts.service_tier == "flex"
    assert output_text(response, "chat.completions") == [
        "a",
        {"content": None, "tool_calls": [{"id": "c1", "name": "f", "arguments": "{}"}]},
    ]


def test_responses_facts():
    body = {
        "id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-5", "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"}, "service_tier": "default", "output": [
            {"type": "message", "id": "m", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "hi", "annotations": []}]}],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    }  # fmt: skip
    for response in (body, Response.model_validate(body)):
        facts = response_facts(response, "responses")
        assert (facts.response_id, facts.model, facts.finish_reason) == ("resp_1", "gpt-5", "max_output_tokens")
        assert facts.service_tier == "default" and facts.system_fingerprint is None
        assert output_text(response, "responses") == "hi"
    assert (
        response_facts({**body, "status": "completed", "incomplete_details": None}, "responses").finish_reason
        == "completed"
    )


def test_embeddings_and_missing_facts():
    assert response_facts({"object": "list", "model": "text-embedding-3-small", "data": []}, "embeddings").model == (
        "text-embedding-3-small"
    )
    empty = response_facts(None, "chat.completions")
    assert empty.response_id is None and empty.finish_reason is None
    odd = response_facts({"id": 5, "model": "", "choices": "x"}, "chat.completions")
    assert odd.response_id is None and odd.model is None and odd.finish_reason is None
