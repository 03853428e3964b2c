"""Installing and removing patches: exact restoration, idempotence, one-client wrapping."""

from __future__ import annotations

import asyncio

import openai
import pytest
from _replay import Replay, async_client, client, load
from openai._base_client import AsyncAPIClient, SyncAPIClient
from openai.resources import embeddings as embeddings_module
from openai.resources.chat import completions as chat_module
from openai.resources.responses import responses as responses_module

import tokentrail
from tokentrail.instrument import instrument, instrumented, uninstrument, wrap_openai

PLAIN = load("test_chat_completion_metrics")[0]
STREAMED = load("test_chat_completion_streaming")[0]

PATCHED = [
    (chat_module.Completions, "create"),
    (chat_module.Completions, "parse"),
    (chat_module.AsyncCompletions, "create"),
    (responses_module.Responses, "create"),
    (responses_module.AsyncResponses, "parse"),
    (embeddings_module.Embeddings, "create"),
    (openai.resources.completions.Completions, "create"),
    (SyncAPIClient, "_process_response"),
    (AsyncAPIClient, "_process_response"),
]


def _own(owner, attr):
    return owner.__dict__.get(attr)


def test_uninstrument_restores_exactly():
    before = {(o, a): _own(o, a) for o, a in PATCHED}
    assert instrument("openai") == ["openai"]
    assert instrumented() == ["openai"]
    for owner, attr in PATCHED:
        assert _own(owner, attr) is not before[(owner, attr)], (owner, attr)
        assert _own(owner, attr).__wrapped__ is before[(owner, attr)]  # signature and docs kept
    uninstrument()
    assert instrumented() == []
    for owner, attr in PATCHED:
        assert _own(owner, attr) is before[(owner, attr)], (owner, attr)


def test_instrumenting_twice_is_a_no_op(calls):
    instrument()
    first = _own(chat_module.Completions, "create")
    instrument("openai")
    assert _own(chat_module.Completions, "create") is first
    client(Replay([PLAIN])).chat.completions.create(**PLAIN.request)
    assert len(calls) == 1


def test_unknown_sdk_name_is_an_error():
    with pytest.raises(tokentrail.ValidationError, match="not a supported SDK"):
        instrument("nonesuch")


def test_nothing_is_recorded_after_uninstrument(calls):
    instrument()
    uninstrument()
    client(Replay([PLAIN])).chat.completions.create(**PLAIN.request)
    assert calls == []


def test_a_wrapper_wrapped_by_someone_else_is_switched_off(calls):
    instrument()
    ours = _own(chat_module.Completions, "create")

    def theirs(self, *args, **kwargs):
        return ours(self, *args, **kwargs)

    chat_module.Completions.create = theirs
    try:
        uninstrument()
        assert _own(chat_module.Completions, "create") is theirs  # their patch is left in place
        client(Replay([PLAIN])).chat.completions.create(**PLAIN.request)
        assert calls == []  # ... and ours passes calls through
    finally:
        chat_module.Completions.create = ours.__wrapped__


def test_wrap_openai_records_one_client_only(calls):
    replay = Replay([PLAIN, PLAIN, PLAIN])
    wrapped = wrap_openai(client(replay))
    other = client(replay)
    assert isinstance(wrapped, openai.OpenAI)
    wrapped.chat.completions.create(**PLAIN.request)
    other.chat.completions.create(**PLAIN.request)
    assert len(calls) == 1
    copy = wrapped.with_options(timeout=5)  # copies of a wrapped client are wrapped too
    copy.chat.completions.create(**PLAIN.request)
    assert len(calls) == 2
    assert calls[0].response_metadata.request_id == PLAIN.header("x-request-id")
    assert calls[0].attempt == 1  # the client's own transport hook saw the response


def test_wrap_openai_provider_override_and_uninstrument(calls):
    sdk = wrap_openai(client(Replay([PLAIN, PLAIN])), provider="groq")
    sdk.chat.completions.create(**PLAIN.request)
    assert calls[0].provider == "groq"
    uninstrument()
    assert "create" not in vars(sdk.chat.completions)
    sdk.chat.completions.create(**PLAIN.request)
    assert len(calls) == 1


def test_wrap_openai_and_instrument_record_once(calls):
    instrument()
    sdk = wrap_openai(client(Replay([PLAIN, STREAMED])))
    sdk.chat.completions.create(**PLAIN.request)
    list(sdk.chat.completions.create(**STREAMED.request))
    assert len(calls) == 2


def test_wrap_async_client(calls):
    sdk = wrap_openai(async_client(Replay([PLAIN])))

    async def main():
        return await sdk.chat.completions.create(**PLAIN.request)

    assert asyncio.run(main()).id == PLAIN.json["id"]
    (call,) = calls
    assert call.token_usage.input_tokens == PLAIN.json["usage"]["prompt_tokens"]
    assert call.rate_limit_info.requests_limit == int(PLAIN.header("x-ratelimit-limit-requests"))
