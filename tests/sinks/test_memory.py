from __future__ import annotations

import threading

from tokentrail.core import LLMCall
from tokentrail.sinks.base import Sink
from tokentrail.sinks.memory import MemorySink


def test_is_a_sink_and_keeps_records_in_write_order():
    sink = MemorySink()
    assert isinstance(sink, Sink)
    first = [LLMCall.new(provider="openai") for _ in range(3)]
    second = [LLMCall.new(provider="anthropic")]
    sink.write(first)
    sink.write(second)
    assert [c.id for c in sink.calls] == [c.id for c in first + second]
    assert len(sink) == 4


def test_calls_is_a_copy_and_clear_empties():
    sink = MemorySink()
    sink.write([LLMCall.new()])
    snapshot = sink.calls
    snapshot.clear()
    assert len(sink) == 1
    sink.clear()
    assert sink.calls == []


def test_close_marks_closed():
    sink = MemorySink(name="mine")
    assert sink.name == "mine"
    sink.flush()
    assert not sink.closed
    sink.close()
    assert sink.closed


def test_concurrent_writers_lose_nothing():
    sink = MemorySink()

    def writer() -> None:
        for _ in range(200):
            sink.write([LLMCall.new()])

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sink) == 800
    assert len({c.id for c in sink.calls}) == 800
