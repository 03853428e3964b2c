"""SPEC §8: whatever goes wrong inside the instrumentation, the caller gets exactly the SDK's
result (the same object) or the SDK's own exception. The guard re-raises under tests, so
these tests switch that off."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from _replay import Exchange, Replay, async_client, client, load

import tokentrail
from tokentrail.instrument import OpenAIPlugin, instrument
from tokentrail.instrument.openai_streams import ChatStreamState
from tokentrail.tracking import set_reraise

PLAIN = load("test_chat_completion_metrics")[0]
STREAMED = load("test_chat_completion_streaming")[0]


@pytest.fixture(autouse=True)
def _swallow():
    set_reraise(False)


def _spy_end(monkeypatch, error: Exception) -> list:
    """Make the plug-in's response hook fail after seeing the SDK's result."""
    seen: list = []

    def broken_end(self, call, result):
        seen.append(result)
        raise error

    monkeypatch.setattr(OpenAIPlugin, "end", broken_end)
    return seen


def test_failing_response_hook_returns_the_sdk_object(monkeypatch, calls):
    seen = _spy_end(monkeypatch, RuntimeError("bug in a plug-in"))
    instrument()
    before = tokentrail.stats().internal_errors
    result = client(Replay([PLAIN])).chat.completions.create(**PLAIN.request)
    assert result is seen[0]  # the very object the SDK returned
    assert tokentrail.stats().internal_errors == before + 1
    assert len(calls) == 1  # still recorded, with what was known before the failure


def test_failing_response_hook_on_a_stream_returns_the_sdk_stream(monkeypatch, calls):
    seen = _spy_end(monkeypatch, KeyError("x"))
    instrument()
    stream = client(Replay([STREAMED])).chat.completions.create(**STREAMED.request)
    assert stream is seen[0]
    assert len(list(stream)) == len(STREAMED.events)


def test_async_failing_response_hook(monkeypatch, calls):
    seen = _spy_end(monkeypatch, ValueError("x"))
    instrument()

    async def main():
        return await async_client(Replay([PLAIN])).chat.completions.create(**PLAIN.request)

    assert asyncio.run(main()) is seen[0]


def test_failing_request_hook_leaves_the_call_alone(monkeypatch, calls):
    def broken_begin(self, *args, **kwargs):
        raise TypeError("bug")

    monkeypatch.setattr(OpenAIPlugin, "begin", broken_begin)
    instrument()
    result = client(Replay([PLAIN])).chat.completions.create(**PLAIN.request)
    assert result.id == PLAIN.json["id"]
    assert calls == []  # unrecorded rather than wrong


def test_failing_error_hook_keeps_the_sdk_exception(monkeypatch, calls):
    def broken_fail(self, call, exc):
        raise RuntimeError("bug")

    monkeypatch.setattr(OpenAIPlugin, "fail", broken_fail)
    instrument()
    ex = load("test_chat_completion_404")[0]
    with pytest.raises(openai.NotFoundError):
        client(Replay([ex])).chat.completions.create(**ex.request)
    assert calls[0].status == "error" and calls[0].error.http_status == 404


def test_failing_stream_feed_passes_every_chunk(monkeypatch, calls):
    def broken_feed(self, chunk):
        raise AttributeError("bug")

    monkeypatch.setattr(ChatStreamState, "feed", broken_feed)
    instrument()
    chunks = list(client(Replay([STREAMED])).chat.completions.create(**STREAMED.request))
    assert [c.id for c in chunks] == [e["id"] for e in STREAMED.events]
    assert len(calls) == 1 and calls[0].token_usage is None


def test_failing_stream_finish_still_records(monkeypatch, calls):
    def broken_finish(self, call, *, partial):
        raise ZeroDivisionError

    monkeypatch.setattr(ChatStreamState, "finish", broken_finish)
    instrument()
    assert len(list(client(Replay([STREAMED])).chat.completions.create(**STREAMED.request))) == len(STREAMED.events)
    assert len(calls) == 1


def _body(change) -> Exchange:
    body = json.loads(PLAIN.body)
    change(body)
    return Exchange({}, "", 200, [("content-type", "application/json")], json.dumps(body))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.update(usage={"prompt_tokens": -5, "completion_tokens": 3, "total_tokens": -2}),
        lambda b: b.update(usage={"prompt_tokens": "many", "completion_tokens": None}),
        lambda b: b.update(
            usage={"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 50}}
        ),
        lambda b: b.update(choices="not a list", model=17, id=None),
        lambda b: b.pop("choices"),
    ],
)
def test_malformed_bodies_reach_the_caller_untouched(change, monkeypatch, calls):
    exchange = _body(change)
    plain = client(Replay([exchange])).chat.completions.create(**PLAIN.request)  # uninstrumented reference
    seen = []
    original_end = OpenAIPlugin.end

    def spy(self, call, result):
        seen.append(result)
        return original_end(self, call, result)

    monkeypatch.setattr(OpenAIPlugin, "end", spy)
    instrument()
    result = client(Replay([exchange])).chat.completions.create(**PLAIN.request)
    assert result is seen[0]
    assert result.model_dump(warnings=False) == plain.model_dump(warnings=False)
    (call,) = calls
    assert call.status == "ok"
    if call.token_usage is not None:  # only well-formed counts are kept
        assert call.token_usage.input_tokens >= (call.token_usage.cache_read_tokens or 0)


def test_non_json_body_behaves_as_without_instrumentation(calls):
    html = Exchange({}, "", 200, [("content-type", "text/html")], "<html>gateway page</html>")
    expected = client(Replay([html])).chat.completions.create(**PLAIN.request)
    instrument()
    got = client(Replay([html])).chat.completions.create(**PLAIN.request)
    assert type(got) is type(expected) and got == expected
    assert len(calls) == 1 and calls[0].token_usage is None
