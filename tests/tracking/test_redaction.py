"""Content capture is opt-in and passes through the redaction hook (SPEC §8)."""

from __future__ import annotations

import re

import tokentrail
from tokentrail.core import Content


def _track(**settings):
    tokentrail.configure(sinks=["memory"], **settings)
    with (
        tokentrail.testing.capture() as calls,
        tokentrail.track_llm_call(provider="openai", model="gpt-4o") as tracker,
    ):
        tracker.set_tokens(input_tokens=10, output_tokens=2)
        tracker.set_content(messages=[{"role": "user", "content": "my card is 4111 1111 1111 1111"}], result="ok")
    return calls[0]


def test_content_is_not_recorded_by_default():
    assert _track().content is None


def test_content_is_recorded_when_capture_is_on():
    call = _track(capture_content=True)
    assert "4111" in call.content.messages[0]["content"]


def test_redactor_rewrites_content_before_it_is_recorded():
    def mask(content: Content) -> Content:
        messages = [{**m, "content": re.sub(r"\d{4}( \d{4}){3}", "[card]", m["content"])} for m in content.messages]
        return Content(messages=messages, result=content.result)

    call = _track(capture_content=True, content_redactor=mask)
    assert call.content.messages[0]["content"] == "my card is [card]"
    assert "4111" not in call.to_json()


def test_redactor_may_drop_content():
    assert _track(capture_content=True, content_redactor=lambda content: None).content is None


def test_failing_redactor_drops_content_rather_than_leaking_it():
    def broken(content: Content) -> Content:
        raise RuntimeError("boom")

    call = _track(capture_content=True, content_redactor=broken)
    assert call.content is None
    assert call.token_usage.input_tokens == 10  # the call itself is still recorded
