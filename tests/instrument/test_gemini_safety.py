"""SPEC §8 for the google-genai plug-in: whatever goes wrong inside it, and whatever the
service sends, the caller gets exactly the SDK's result (the same object) or the SDK's own
exception. The guard re-raises under tests, so these tests switch that off."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials

import tokentrail
from tokentrail.instrument import instrument
from tokentrail.instrument.gemini_sdk import GeminiPlugin
from tokentrail.instrument.gemini_streams import GeminiStreamState
from tokentrail.tracking import set_reraise

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from _cassette_replay import GOOGLE_GENAI, VERTEXAI, Interaction, load, parse_sse, replay

(PLAIN,) = load(GOOGLE_GENAI / "test_non_streaming[logcontent-gemini-2.5-flash-vertexaiapi-sync-default].yaml")
(STREAMED,) = load(GOOGLE_GENAI / "test_streaming[logcontent-gemini-2.5-flash-vertexaiapi-sync-default].yaml")
(ERROR,) = load(VERTEXAI / "test_generate_content_invalid_temperature.yaml")


@pytest.fixture(autouse=True)
def _swallow():
    set_reraise(False)


def generate(interaction: Interaction, *, stream: bool = False) -> Any:
    with replay([interaction]) as server:
        client = genai.Client(
            vertexai=True,
            project="p",
            location="l",
            credentials=Credentials("t"),
            http_options=types.HttpOptions(base_url=server.base_url),
        )
        if stream:
            return list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
        return client.models.generate_content(model="gemini-2.5-flash", contents="x")


def test_failing_response_hook_returns_the_sdk_object(monkeypatch, calls):
    seen: list = []

    def broken_end(self, call, result):
        seen.append(result)
        raise RuntimeError("bug in a plug-in")

    monkeypatch.setattr(GeminiPlugin, "end", broken_end)
    instrument("gemini")
    before = tokentrail.stats().internal_errors
    result = generate(PLAIN)
    assert result is seen[0]
    assert tokentrail.stats().internal_errors == before + 1
    assert len(calls) == 1


def test_failing_request_hook_leaves_the_call_alone(monkeypatch, calls):
    monkeypatch.setattr(GeminiPlugin, "begin", lambda *a, **k: 1 / 0)
    instrument("gemini")
    assert generate(PLAIN).response_id == PLAIN.json["responseId"]
    assert calls == []


def test_failing_error_hook_keeps_the_sdk_exception(monkeypatch, calls):
    monkeypatch.setattr(GeminiPlugin, "fail", lambda *a, **k: 1 / 0)
    instrument("gemini")
    with pytest.raises(errors.ClientError):
        generate(ERROR)
    assert calls[0].status == "error"


def test_failing_stream_hooks_pass_every_chunk(monkeypatch, calls):
    def broken(self, *args, **kwargs):
        raise AttributeError("bug")

    monkeypatch.setattr(GeminiStreamState, "feed", broken)
    monkeypatch.setattr(GeminiStreamState, "finish", broken)
    instrument("gemini")
    chunks = generate(STREAMED, stream=True)
    assert [c.response_id for c in chunks] == [c["responseId"] for c in parse_sse(STREAMED.body)]
    assert len(calls) == 1


def _body(change) -> Interaction:
    body = json.loads(PLAIN.body)
    change(body)
    return dataclasses.replace(PLAIN, body=json.dumps(body))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["usageMetadata"].update(promptTokenCount=-3),
        lambda b: b["usageMetadata"].update(cachedContentTokenCount=10**6),
        lambda b: b["usageMetadata"].update(candidatesTokensDetails=[{"modality": "TEXT", "tokenCount": 10**7}]),
        lambda b: b.update(usageMetadata="nothing", modelVersion=None),
        lambda b: b.pop("usageMetadata"),
        lambda b: b.update(candidates=[]),
    ],
)
def test_malformed_bodies_reach_the_caller_untouched(change, monkeypatch, calls):
    interaction = _body(change)
    try:
        expected: Any = generate(interaction).model_dump(exclude={"sdk_http_response"})
    except Exception as exc:  # the SDK's own verdict on the body
        expected = type(exc)
    seen: list = []
    original_end = GeminiPlugin.end

    def spy(self, call, result):
        seen.append(result)
        return original_end(self, call, result)

    monkeypatch.setattr(GeminiPlugin, "end", spy)
    instrument("gemini")
    if isinstance(expected, type):
        with pytest.raises(expected):
            generate(interaction)
        return
    result = generate(interaction)
    assert result is seen[0]
    assert result.model_dump(exclude={"sdk_http_response"}) == expected
    (call,) = calls
    assert call.status == "ok"
    if call.token_usage is not None:  # only well-formed counts are kept
        assert call.token_usage.input_tokens >= (call.token_usage.cache_read_tokens or 0)
