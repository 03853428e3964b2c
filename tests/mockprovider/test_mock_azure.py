"""Azure OpenAI flavour through the real `AzureOpenAI` client."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import openai
import pytest
from _mock_wire import assert_extracted, post

from tokentrail.mockprovider import MockProvider
from tokentrail.providers import extract_usage

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def azure_mock() -> Iterator[MockProvider]:
    with MockProvider(port=0, azure_deployments={"prod-4o": "gpt-4o-2024-08-06"}) as server:
        yield server


@pytest.fixture
def azure(azure_mock: MockProvider) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=azure_mock.url, api_key="azure-key", api_version="2024-10-21", max_retries=0
    ) as client:
        yield client


def test_deployment_maps_to_its_model_and_headers_are_azures(azure: openai.AzureOpenAI, azure_mock: MockProvider):
    raw = azure.chat.completions.with_raw_response.create(model="prod-4o", messages=[{"role": "user", "content": "hi"}])
    response = raw.parse()
    assert response.model == "gpt-4o-2024-08-06"  # the deployment name is only in the URL
    assert response.prompt_filter_results[0]["content_filter_results"]["hate"]["filtered"] is False
    assert response.choices[0].content_filter_results["violence"]["severity"] == "safe"
    headers = raw.headers
    assert UUID.match(headers["apim-request-id"])
    assert "x-request-id" not in headers
    assert int(headers["x-ratelimit-remaining-requests"]) == 499
    assert int(headers["x-ratelimit-remaining-tokens"]) == 200_000 - response.usage.total_tokens
    assert not any(name.startswith(("x-ratelimit-limit", "x-ratelimit-reset")) for name in headers)
    assert_extracted(extract_usage(response, "azure", "chat.completions"), azure_mock.calls[-1].usage)
    assert azure_mock.calls[-1].provider == "azure"


def test_unmapped_deployment_echoes_its_name(azure: openai.AzureOpenAI):
    response = azure.chat.completions.create(model="team-deploy", messages=[{"role": "user", "content": "hi"}])
    assert response.model == "team-deploy"


def test_stream_opens_with_an_empty_prompt_filter_chunk(azure: openai.AzureOpenAI):
    chunks = list(
        azure.chat.completions.create(model="prod-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    first = chunks[0]
    assert first.id == "" and first.model == "" and first.choices == []
    assert first.prompt_filter_results[0]["prompt_index"] == 0
    assert all(chunk.usage is None for chunk in chunks)  # no usage without include_usage
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[1].model == "gpt-4o-2024-08-06"


def test_stream_with_include_usage(azure: openai.AzureOpenAI, azure_mock: MockProvider):
    chunks = list(
        azure.chat.completions.create(
            model="prod-4o",
            messages=[{"role": "user", "content": "hello azure"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices == [] and chunks[0].usage is None
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == math.ceil(len("hello azure") / 4)
    assert_extracted(extract_usage(chunks, "azure", "chat.completions"), azure_mock.calls[-1].usage)


def test_embeddings_and_raw_deployment_path(azure: openai.AzureOpenAI, azure_mock: MockProvider):
    result = azure.embeddings.create(model="embed-deploy", input="vector me")
    assert result.usage.prompt_tokens == math.ceil(len("vector me") / 4)
    url = f"{azure_mock.url}/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
    status, headers, _ = post(url, {"messages": [{"role": "user", "content": "x"}]}, {"api-key": "k"})
    assert status == 200 and "apim-request-id" in headers and "openai-model" not in headers
