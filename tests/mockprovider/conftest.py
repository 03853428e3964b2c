"""Fixtures for the mock-provider tests: a fresh server per test and real SDK clients on it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from _mock_wire import RETRY_AFTER_MS
from google import genai
from google.genai import types as genai_types

from tokentrail.mockprovider import MockProvider


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider(port=0, retry_after_ms=RETRY_AFTER_MS) as server:
        yield server


@pytest.fixture
def oai(mock: MockProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=mock.openai_base_url, api_key="sk-test-key", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(mock: MockProvider) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=mock.url, api_key="sk-ant-test", max_retries=0) as client:
        yield client


@pytest.fixture
def gem(mock: MockProvider) -> Iterator[genai.Client]:
    with genai.Client(api_key="gemini-test-key", http_options=genai_types.HttpOptions(base_url=mock.url)) as client:
        yield client
