"""SPEC §8 for the Anthropic plug-in: whatever goes wrong inside it, and whatever the service
sends, the caller gets exactly the SDK's result (the same object) or the SDK's own exception.
The guard re-raises under tests, so these tests switch that off."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest

import tokentrail
from tokentrail.instrument import AnthropicPlugin, instrument
from tokentrail.instrument.anthropic_streams import MessagesStreamState
from tokentrail.tracking import set_reraise

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from _cassette_replay import ANTHROPIC, Interaction, load, parse_sse, replay

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

(PLAIN,) = load(ANTHROPIC / "test_sync_messages_create_basic.yaml")
(STREAMED,) = load(ANTHROPIC / "test_sync_messages_create_streaming.yaml")
(ERROR,) = load(ANTHROPIC / "test_sync_messages_create_api_error.yaml")
REQUEST = json.loads(PLAIN.request_body)


@pytest.fixture(autouse=True)
def _swallow():
    set_reraise(False)


def run(interaction: Interaction, **changes: Any) -> Any:
    with replay([interaction]) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.base_url, max_retries=0)
        return client.messages.create(**{**REQUEST, **changes})


def _spy_end(monkeypatch, error: Exception) -> list:
    seen: list = []

    def broken_end(self, call, result):
        seen.append(result)
        raise error

    monkeypatch.setattr(AnthropicPlugin, "end", broken_end)
    return seen


def test_failing_response_hook_returns_the_sdk_object(monkeypatch, calls):
    seen = _spy_end(monkeypatch, RuntimeError("bug in a plug-in"))
    instrument("anthropic")
    before = tokentrail.stats().internal_errors
    result = run(PLAIN)
    assert result is seen[0]
    assert tokentrail.stats().internal_errors == before + 1
    assert len(calls) == 1


def test_failing_response_hook_on_a_stream_returns_the_sdk_stream(monkeypatch, calls):
    seen = _spy_end(monkeypatch, KeyError("x"))
    instrument("anthropic")
    with replay([STREAMED]) as server:
        stream = anthropic.Anthropic(api_key="k", base_url=server.base_url).messages.create(**REQUEST, stream=True)
        assert stream is seen[0]
        assert [e.type for e in stream][-1] == "message_stop"


def test_failing_request_hook_leaves_the_call_alone(monkeypatch, calls):
    def broken_begin(self, *args, **kwargs):
        raise TypeError("bug")

    monkeypatch.setattr(AnthropicPlugin, "begin", broken_begin)
    instrument("anthropic")
    assert run(PLAIN).id == PLAIN.json["id"]
    assert calls == []


def test_failing_error_hook_keeps_the_sdk_exception(monkeypatch, calls):
    def broken_fail(self, call, exc):
        raise RuntimeError("bug")

    monkeypatch.setattr(AnthropicPlugin, "fail", broken_fail)
    instrument("anthropic")
    with pytest.raises(anthropic.NotFoundError):
        run(ERROR)
    assert calls[0].status == "error" and calls[0].error.http_status == 404


def test_failing_stream_hooks_pass_every_event(monkeypatch, calls):
    def broken(self, *args, **kwargs):
        raise AttributeError("bug")

    monkeypatch.setattr(MessagesStreamState, "feed", broken)
    monkeypatch.setattr(MessagesStreamState, "finish", broken)
    instrument("anthropic")
    with replay([STREAMED]) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.base_url)
        events = list(client.messages.create(**REQUEST, stream=True))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    assert len(calls) == 1


def test_failing_stream_helper_hook_leaves_the_helper_working(monkeypatch, calls):
    def broken(self, *args, **kwargs):
        raise ValueError("bug")

    monkeypatch.setattr(AnthropicPlugin, "_record_manager", broken)
    instrument("anthropic")
    with replay([STREAMED]) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.base_url)
        with client.messages.stream(**REQUEST) as stream:
            text = stream.get_final_text()
    deltas = [e["delta"]["text"] for e in parse_sse(STREAMED.body) if e["type"] == "content_block_delta"]
    assert text == "".join(deltas)
    assert calls == []  # unrecorded rather than wrong


def _body(change) -> Interaction:
    body = json.loads(PLAIN.body)
    change(body)
    return dataclasses.replace(PLAIN, body=json.dumps(body))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["usage"].update(input_tokens=-5),
        lambda b: b["usage"].update(input_tokens="many", output_tokens=None),
        lambda b: b["usage"].update(cache_creation={"ephemeral_5m_input_tokens": 10**6}),
        lambda b: b.update(usage=[1, 2], stop_reason=7, model=None),
        lambda b: b.pop("usage"),
        lambda b: b.update(content="not a list", id=None),
    ],
)
def test_malformed_bodies_reach_the_caller_untouched(change, monkeypatch, calls):
    interaction = _body(change)
    try:
        expected: Any = run(interaction).model_dump(warnings=False)  # uninstrumented reference
    except Exception as exc:  # the SDK's own verdict on the body
        expected = type(exc)
    seen: list = []
    original_end = AnthropicPlugin.end

    def spy(self, call, result):
        seen.append(result)
        return original_end(self, call, result)

    monkeypatch.setattr(AnthropicPlugin, "end", spy)
    instrument("anthropic")
    if isinstance(expected, type):
        with pytest.raises(expected):
            run(interaction)
        return
    result = run(interaction)
    assert result is seen[0]
    assert result.model_dump(warnings=False) == expected
    (call,) = calls
    assert call.status == "ok"
    if call.token_usage is not None:  # only well-formed counts are kept
        assert call.token_usage.input_tokens >= (call.token_usage.cache_write_tokens or 0)


def test_non_json_body_behaves_as_without_instrumentation(calls):
    html = dataclasses.replace(PLAIN, headers={"content-type": ["text/html"]}, body="<html>gateway</html>")
    expected = run(html)
    instrument("anthropic")
    got = run(html)
    assert type(got) is type(expected) and got == expected
    assert len(calls) == 1 and calls[0].token_usage is None
