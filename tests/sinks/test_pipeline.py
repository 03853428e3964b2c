from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from tokentrail.core import LLMCall, ValidationError
from tokentrail.sinks.memory import MemorySink
from tokentrail.sinks.pipeline import Pipeline, PipelineStats


def calls(n: int) -> list[LLMCall]:
    return [LLMCall.new(provider="openai", request_model="gpt-4o-mini") for _ in range(n)]


class BatchRecorder(MemorySink):
    def __init__(self) -> None:
        super().__init__(name="batches")
        self.sizes: list[int] = []

    def write(self, batch: Sequence[LLMCall]) -> None:
        self.sizes.append(len(batch))
        super().write(batch)


class FailingSink:
    name = "failing"

    def __init__(self) -> None:
        self.attempts = 0
        self.flushed = 0

    def write(self, batch: Sequence[LLMCall]) -> None:
        self.attempts += 1
        raise OSError("disk full")

    def flush(self) -> None:
        self.flushed += 1
        raise OSError("flush failed")

    def close(self) -> None:
        pass


class BlockingSink(MemorySink):
    """Blocks inside write until released, to hold the worker busy."""

    def __init__(self) -> None:
        super().__init__(name="blocking")
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, batch: Sequence[LLMCall]) -> None:
        self.entered.set()
        assert self.release.wait(10), "test never released the sink"
        super().write(batch)


@pytest.fixture
def pipelines():
    made: list[Pipeline] = []

    def make(*sinks, **kwargs) -> Pipeline:
        kwargs.setdefault("flush_interval", 60.0)  # only flush()/batches wake the worker
        p = Pipeline(list(sinks), **kwargs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.shutdown(timeout=5)


def test_flush_writes_everything_submitted_before_it_in_order(pipelines):
    sink = MemorySink()
    p = pipelines(sink, queue_size=1000, batch_size=16)
    records = calls(100)
    assert all(p.submit(c) for c in records)
    assert p.flush(timeout=5)
    assert [c.id for c in sink.calls] == [c.id for c in records]
    s = p.stats()
    assert (s.queued, s.written, s.dropped, s.internal_errors) == (0, 100, 0, 0)


def test_batches_never_exceed_batch_size(pipelines):
    sink = BatchRecorder()
    p = pipelines(sink, queue_size=1000, batch_size=7)
    for c in calls(50):
        p.submit(c)
    assert p.flush(timeout=5)
    assert sum(sink.sizes) == 50
    assert max(sink.sizes) <= 7


def test_worker_wakes_on_its_interval_without_flush(pipelines):
    sink = MemorySink()
    p = pipelines(sink, queue_size=100, batch_size=100, flush_interval=0.02)
    p.submit(calls(1)[0])
    deadline = time.monotonic() + 5
    while len(sink) < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(sink) == 1


def test_a_raising_sink_is_counted_and_the_others_still_get_every_batch(pipelines):
    good, bad = MemorySink(), FailingSink()
    p = pipelines(bad, good, queue_size=1000, batch_size=10)
    for c in calls(25):
        p.submit(c)
    assert p.flush(timeout=5)
    assert len(good) == 25
    s = p.stats()
    assert s.written == 25
    assert s.sink_errors["failing"] >= 25  # every record of every failed batch (+1 per failed flush)
    assert s.sink_errors["memory"] == 0
    assert s.internal_errors == bad.attempts + bad.flushed
    # the worker is still alive and keeps delivering
    for c in calls(5):
        p.submit(c)
    assert p.flush(timeout=5)
    assert len(good) == 30


def test_queue_full_drops_and_counts_and_never_blocks_the_caller(pipelines):
    blocking = BlockingSink()
    p = pipelines(blocking, queue_size=50, batch_size=1)
    p.submit(calls(1)[0])
    assert blocking.entered.wait(5)  # the worker now holds one record and is stuck
    slowest = 0.0
    results = []
    for c in calls(60):
        t0 = time.perf_counter()
        results.append(p.submit(c))
        slowest = max(slowest, time.perf_counter() - t0)
    assert results.count(True) == 50
    assert results.count(False) == 10
    assert slowest < 0.05  # a stuck sink never makes submit wait
    assert p.stats().dropped == 10
    assert p.stats().queued == 50
    assert not p.flush(timeout=0.05)  # cannot complete while the sink is stuck
    blocking.release.set()
    assert p.flush(timeout=5)
    assert len(blocking) == 51
    assert p.stats().written == 51


def test_shutdown_drains_closes_and_later_records_are_dropped(pipelines):
    sink = MemorySink()
    p = pipelines(sink, queue_size=100, batch_size=10)
    for c in calls(15):
        p.submit(c)
    assert p.shutdown(timeout=5)
    assert len(sink) == 15
    assert sink.closed
    assert p.closed
    assert p.submit(calls(1)[0]) is False
    assert p.stats().dropped == 1
    assert p.shutdown(timeout=1)  # idempotent
    assert p.flush(timeout=1)  # nothing left to wait for


def test_sinks_without_flush_or_close_are_fine(pipelines):
    got: list[LLMCall] = []

    class WriteOnly:
        name = "write-only"

        def write(self, batch):
            got.extend(batch)

    p = pipelines(WriteOnly(), queue_size=10, batch_size=5)
    p.submit(calls(1)[0])
    assert p.flush(timeout=5)
    assert p.shutdown(timeout=5)
    assert len(got) == 1


def test_spooled_is_summed_from_sinks_that_expose_it(pipelines):
    class Spooling(MemorySink):
        spooled = 7

    p = pipelines(Spooling(name="a"), Spooling(name="b"), MemorySink())
    assert p.stats().spooled == 14


def test_duplicate_sink_names_get_their_own_error_counts(pipelines):
    p = pipelines(FailingSink(), FailingSink(), queue_size=10, batch_size=5)
    p.submit(calls(1)[0])
    p.flush(timeout=5)
    errors = p.stats().sink_errors
    assert set(errors) == {"failing", "failing#1"}
    assert errors["failing"] >= 1 and errors["failing#1"] >= 1


def test_flush_from_many_threads_while_submitting(pipelines):
    sink = MemorySink()
    p = pipelines(sink, queue_size=100_000, batch_size=64)

    def producer() -> None:
        for c in calls(500):
            p.submit(c)
        assert p.flush(timeout=10)

    threads = [threading.Thread(target=producer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sink) == 2000
    assert p.stats().written == 2000


def test_submit_is_cheap():
    # a loose ceiling (not a benchmark): 20k submits well under a second, so no lock or I/O
    p = Pipeline([MemorySink()], queue_size=100_000, batch_size=100_000, flush_interval=60)
    records = calls(20_000)
    t0 = time.perf_counter()
    for c in records:
        p.submit(c)
    elapsed = time.perf_counter() - t0
    p.shutdown(timeout=10)
    assert elapsed < 1.0, f"{elapsed / len(records) * 1e6:.1f} µs per submit"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"queue_size": 0}, "queue_size"),
        ({"batch_size": -1}, "batch_size"),
        ({"flush_interval": 0}, "flush_interval"),
    ],
)
def test_bad_settings_are_refused(kwargs, field):
    with pytest.raises(ValidationError) as err:
        Pipeline([MemorySink()], **kwargs)
    assert err.value.field == field


def test_objects_without_write_are_refused():
    with pytest.raises(ValidationError) as err:
        Pipeline([MemorySink(), object()])
    assert err.value.field == "sinks[1]"


def test_stats_to_dict():
    s = PipelineStats(queued=1, written=2, dropped=3, spooled=4, internal_errors=5, sink_errors={"x": 6})
    assert s.to_dict() == {
        "queued": 1,
        "written": 2,
        "dropped": 3,
        "spooled": 4,
        "internal_errors": 5,
        "sink_errors": {"x": 6},
    }
