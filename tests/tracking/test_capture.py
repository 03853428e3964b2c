from __future__ import annotations

import threading

from tokentrail import testing
from tokentrail.core import LLMCall
from tokentrail.tracking import log_llm_usage, track_llm_call


def test_capture_collects_what_is_emitted_inside_the_block_only(sink):
    log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    with testing.capture() as calls:
        with track_llm_call(provider="openai", model="gpt-4o-mini") as tracker:
            tracker.set_tokens(input_tokens=5, output_tokens=6)
        worker = threading.Thread(target=log_llm_usage, args=("anthropic", "claude-3-5-haiku-latest"))
        worker.start()
        worker.join()
    log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    assert [c.provider for c in calls] == ["openai", "anthropic"]
    assert all(isinstance(c, LLMCall) for c in calls)
    assert calls[0].token_usage.input_tokens == 5
    assert calls[0].to_dict()["token_usage"]["output_tokens"] == 6
    assert calls.by_operation("chat") == list(calls)
    # the configured sink was not disturbed: it got everything, and was flushed on exit
    assert len(sink.records()) == 4


def test_capture_works_with_the_default_runtime():
    with testing.capture() as calls:
        log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    assert len(calls) == 1


def test_nested_captures_both_see_the_inner_records(sink):
    with testing.capture() as outer:
        log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
        with testing.capture() as inner:
            log_llm_usage("openai", "gpt-4o", input_tokens=2, output_tokens=2)
    assert len(outer) == 2 and len(inner) == 1
