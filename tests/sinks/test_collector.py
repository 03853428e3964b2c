"""The collector sink against a real HTTP server on 127.0.0.1: batching, retry, spool, redelivery."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_server import FakeCollector, free_port

from tokentrail.core import LLMCall, TokenUsage, ValidationError
from tokentrail.core.settings import Settings
from tokentrail.sinks.collector import REJECTED_FILE, CollectorSink
from tokentrail.sinks.pipeline import Pipeline


def make_calls(n: int) -> list[LLMCall]:
    return [
        LLMCall.new(
            provider="openai", request_model="gpt-4o", token_usage=TokenUsage.build(input_tokens=i, output_tokens=1)
        )
        for i in range(n)
    ]


def settings_for(home: Path, url: str, **changes: object) -> Settings:
    values: dict[str, object] = {
        "home": str(home),
        "collector_url": url,
        "api_key": "test-key",
        "sinks": ["collector"],
        "batch_size": 100,
        "collector_max_retries": 2,
        "collector_timeout": 5.0,
    }
    values.update(changes)
    return Settings.load(**values)


def make_sink(home: Path, url: str, *, outage_backoff: float = 0.02, **changes: object) -> CollectorSink:
    """A sink with short waits: retries 10 ms apart, a down server tried again after ~20 ms."""
    return CollectorSink(
        settings_for(home, url, **changes), backoff_base=0.01, outage_backoff=outage_backoff, backoff_max=120.0
    )


def deliver_all(sink: CollectorSink, timeout: float = 20.0) -> None:
    """Flush until the spool is empty (waiting out the sink's short backoff)."""
    deadline = time.monotonic() + timeout
    while sink.spooled and time.monotonic() < deadline:
        sink.flush()
        time.sleep(0.01)
    assert sink.spooled == 0


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    server = FakeCollector().up()
    yield server
    server.down()


def test_batches_are_gzip_json_with_the_bearer_key_over_one_connection(tmp_path, collector):
    sink = make_sink(tmp_path, collector.url)
    calls = make_calls(250)
    sink.write(calls[:120])
    sink.write(calls[120:])
    assert collector.order == [c.id for c in calls]
    assert collector.requests == 4  # 100 + 20 + 100 + 30: batch_size bounds a request
    assert len(collector.client_ports) == 1  # keep-alive
    headers = collector.headers[0]
    assert headers["Authorization"] == "Bearer test-key"
    assert headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "application/json"
    assert sink.sent == 250 and sink.duplicates == 0 and sink.spooled == 0
    # the body is exactly the records' JSON form
    assert LLMCall.from_dict(collector.stored[calls[0].id]) == calls[0]
    sink.close()


def test_collector_down_spooled_then_back_delivers_each_record_exactly_once_in_order(tmp_path):
    server = FakeCollector()  # not listening yet: connections are refused
    sink = make_sink(tmp_path, server.url, outage_backoff=60.0)
    calls = make_calls(1000)
    sink.write(calls[:300])
    assert sink.spooled == 300 and sink.is_down
    failures = sink.failures
    for i in range(300, 1000, 100):
        sink.write(calls[i : i + 100])  # while down: straight to disk, no network attempt
    assert sink.failures == failures
    assert sink.spooled == 1000
    sink.flush()  # still inside the backoff: nothing is tried
    assert sink.failures == failures
    server.up()
    try:
        sink.retry_now()
        deliver_all(sink)
        assert server.order == [c.id for c in calls]
        assert set(server.deliveries.values()) == {1}  # none sent twice
        assert sink.sent == 1000 and sink.dropped == 0
        assert not list((tmp_path / "spool").glob("seg-*"))
        # new records flow directly again
        more = make_calls(5)
        sink.write(more)
        assert server.order[-5:] == [c.id for c in more]
    finally:
        sink.close()
        server.down()


def test_transient_errors_are_retried_without_spooling(tmp_path, collector):
    collector.fail_times = 2  # two 503s, then success
    sink = make_sink(tmp_path, collector.url)
    calls = make_calls(10)
    sink.write(calls)
    assert collector.requests == 3 and sink.failures == 2
    assert collector.order == [c.id for c in calls] and sink.spooled == 0
    sink.close()


def test_server_errors_past_the_retries_spool_then_deliver(tmp_path, collector):
    collector.status = 503
    sink = make_sink(tmp_path, collector.url, collector_max_retries=1)
    calls = make_calls(30)
    sink.write(calls)
    assert collector.requests == 2 and sink.spooled == 30 and not collector.stored
    collector.status = None
    deliver_all(sink)
    assert collector.order == [c.id for c in calls]
    sink.close()


def test_429_retry_after_is_honoured(tmp_path, collector):
    collector.fail_times, collector.fail_status, collector.retry_after = 1, 429, "30"
    sink = make_sink(tmp_path, collector.url)
    sink.write(make_calls(3))
    assert collector.requests == 1  # 30 s is past the retry budget: no retry, spool
    assert sink.spooled == 3
    assert sink._down_until - time.monotonic() > 25
    sink.write(make_calls(2))
    assert collector.requests == 1 and sink.spooled == 5
    sink.retry_now()
    deliver_all(sink)
    assert len(collector.stored) == 5
    sink.close()


def test_one_refused_record_is_set_aside_and_its_batch_delivered(tmp_path, collector):
    sink = make_sink(tmp_path, collector.url)
    calls = make_calls(40)
    collector.reject_ids = {calls[17].id}
    sink.write(calls)
    assert set(collector.stored) == {c.id for c in calls} - {calls[17].id}
    assert sink.rejected == 1 and sink.spooled == 0
    lines = (tmp_path / "spool" / REJECTED_FILE).read_text().splitlines()
    assert len(lines) == 1
    rejected = json.loads(lines[0])
    assert rejected["status"] == 400
    assert rejected["error"]["detail"][0]["field"] == "calls[0].token_usage.input_tokens"
    assert LLMCall.from_dict(rejected["record"]) == calls[17]  # kept whole, for replay
    sink.close()


def test_a_wrong_key_keeps_the_records_in_the_rejected_file(tmp_path, collector):
    sink = make_sink(tmp_path, collector.url, api_key="wrong")
    sink.write(make_calls(12))
    assert collector.requests == 1 and not collector.stored  # not retried, not bisected
    assert sink.rejected == 12 and sink.spooled == 0
    rows = [json.loads(line) for line in (tmp_path / "spool" / REJECTED_FILE).read_text().splitlines()]
    assert [r["status"] for r in rows] == [401] * 12 and rows[0]["error"] == {"detail": "bad api key"}
    sink.close()


def test_settings_are_checked():
    with pytest.raises(ValidationError) as err:
        CollectorSink(Settings(collector_url=None))
    assert err.value.field == "collector_url"
    with pytest.raises(ValidationError):
        CollectorSink(Settings(collector_url="ftp://example"))


def test_through_the_pipeline_with_an_outage(tmp_path):
    server = FakeCollector()
    sink = make_sink(tmp_path, server.url, collector_max_retries=0)
    pipeline = Pipeline([sink], queue_size=10_000, batch_size=100, flush_interval=0.05)
    calls = make_calls(600)
    for call in calls[:300]:
        pipeline.submit(call)
    assert pipeline.flush(timeout=30)
    assert pipeline.stats().spooled == 300
    server.up()
    try:
        for call in calls[300:]:
            pipeline.submit(call)
        deadline = time.monotonic() + 20
        while len(server.stored) < 600 and time.monotonic() < deadline:
            assert pipeline.flush(timeout=10)
            time.sleep(0.02)
        assert server.order == [c.id for c in calls]
        assert set(server.deliveries.values()) == {1}
        stats = pipeline.stats()
        assert stats.spooled == 0 and stats.internal_errors == 0 and stats.dropped == 0
    finally:
        pipeline.shutdown(timeout=10)
        server.down()


def test_an_idle_process_empties_its_spool_once_the_collector_is_back(tmp_path):
    server = FakeCollector()
    sink = make_sink(tmp_path, server.url, collector_max_retries=0)
    pipeline = Pipeline([sink], queue_size=1_000, batch_size=100, flush_interval=0.05)
    calls = make_calls(50)
    for call in calls:
        pipeline.submit(call)
    assert pipeline.flush(timeout=30)
    assert pipeline.stats().spooled == 50
    server.up()
    try:
        # no further submit and no flush: the worker's idle ticks alone must redeliver
        deadline = time.monotonic() + 20
        while len(server.stored) < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.order == [c.id for c in calls]
        assert pipeline.stats().spooled == 0
    finally:
        pipeline.shutdown(timeout=10)
        server.down()


_SPOOLER = textwrap.dedent(
    """
    import sys, time
    from tokentrail.core import LLMCall, TokenUsage
    from tokentrail.core.settings import Settings
    from tokentrail.sinks.collector import CollectorSink

    home, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = Settings.load(home=home, collector_url=url, api_key="test-key", sinks=["collector"],
                             batch_size=100, collector_max_retries=0, collector_timeout=5.0)
    sink = CollectorSink(settings, backoff_base=0.01, outage_backoff=0.02)
    for start in range(0, n, 100):
        calls = [LLMCall.new(request_model="m", token_usage=TokenUsage.build(input_tokens=i, output_tokens=0))
                 for i in range(start, min(n, start + 100))]
        sink.write(calls)
        print(" ".join(c.id for c in calls), flush=True)
    print("spooled", sink.spooled, flush=True)
    time.sleep(600)  # killed before any shutdown code runs
    """
)


def test_a_killed_process_spool_is_delivered_by_the_next_process(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = subprocess.Popen(
        [sys.executable, "-c", _SPOOLER, str(tmp_path), url, "750"], stdout=subprocess.PIPE, text=True
    )
    ids: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("spooled"):
            assert int(line.split()[1]) == 750
            break
        ids += line.split()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    server = FakeCollector(port).up()
    try:
        sink = make_sink(tmp_path, url)  # the next process, same spool directory
        assert sink.spooled == 750
        deliver_all(sink)
        assert server.order == ids
        assert set(server.deliveries.values()) == {1}
        sink.close()
    finally:
        server.down()


def test_a_process_killed_before_its_ack_causes_no_duplicate_rows(tmp_path):
    """The server commits a batch but the process dies before reading the answer: the next
    process sends that batch again, and the server's idempotency stores it once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = subprocess.Popen(
        [sys.executable, "-c", _SPOOLER, str(tmp_path), url, "500"], stdout=subprocess.PIPE, text=True
    )
    ids: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("spooled"):
            break
        ids += line.split()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    # a second process starts draining; the server stores its first batch and hangs
    server = FakeCollector(port)
    server.hang_after_store = True
    server.up()
    drainer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[3]);"
            "from test_collector import make_sink; from pathlib import Path;"
            "make_sink(Path(sys.argv[1]), sys.argv[2]).flush()",
            str(tmp_path),
            url,
            str(Path(__file__).parent),
        ],
    )
    deadline = time.monotonic() + 30
    while len(server.stored) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # nothing more arrives: the drainer waits for the answer
    assert len(server.stored) == 100
    os.kill(drainer.pid, signal.SIGKILL)
    drainer.wait(timeout=30)
    server.down()
    server.hang_after_store = False
    server.up()
    try:
        sink = make_sink(tmp_path, url)
        assert sink.spooled == 500  # the first batch was never acknowledged
        deliver_all(sink)
        assert server.order == ids
        assert len(server.stored) == 500
        assert sorted(server.deliveries.values()).count(2) == 100  # resent, stored once
        assert sink.duplicates == 100
        sink.close()
    finally:
        server.down()


_FULL_DISK = textwrap.dedent(
    """
    import json, resource, signal, sys
    from tokentrail.core import LLMCall
    from tokentrail.core.settings import Settings
    from tokentrail.sinks.collector import CollectorSink
    from tokentrail.sinks.pipeline import Pipeline

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, resource.RLIM_INFINITY))  # the disk fills up
    settings = Settings.load(home=sys.argv[1], collector_url=sys.argv[2], api_key="test-key",
                             sinks=["collector"], batch_size=50, collector_max_retries=0)
    sink = CollectorSink(settings, backoff_base=0.01, outage_backoff=0.02)
    pipeline = Pipeline([sink], batch_size=50, flush_interval=0.05)
    for i in range(2000):
        pipeline.submit(LLMCall.new(request_model="m", metadata={"i": i}))
    pipeline.flush(timeout=60)
    stats = pipeline.stats()
    print(json.dumps({"spooled": sink.spooled, "dropped": sink.dropped, "errors": sink.spool.write_errors,
                      "internal_errors": stats.internal_errors, "written": stats.written}))
    pipeline.shutdown(timeout=10)
    """
)


def test_a_full_disk_drops_and_counts_but_never_breaks_the_worker(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(tmp_path), url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["written"] == 2000 and result["internal_errors"] == 0
    assert result["errors"] > 0 and result["dropped"] > 0
    assert result["spooled"] + result["dropped"] == 2000
    assert "No space" in done.stderr or "too large" in done.stderr  # logged
    server = FakeCollector(port).up()
    try:
        sink = make_sink(tmp_path, url)
        assert sink.spooled == result["spooled"]
        deliver_all(sink)
        stored = [server.stored[i]["metadata"]["i"] for i in server.order]
        # what fitted, whole and in order (the file size limit is per file, so later
        # segments took records again after earlier ones failed)
        assert len(stored) == result["spooled"] and stored == sorted(set(stored))
        assert set(server.deliveries.values()) == {1}
        sink.close()
    finally:
        server.down()


def test_gzip_body_is_valid_and_compact(tmp_path, collector):
    bodies: list[bytes] = []
    original = collector.handle

    def spy(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        bodies.append(body)
        return original(path, headers, body)

    collector.handle = spy  # type: ignore[method-assign]
    sink = make_sink(tmp_path, collector.url)
    sink.write(make_calls(100))
    raw = gzip.decompress(bodies[0])
    assert len(bodies[0]) < len(raw) / 3
    assert len(json.loads(raw)["calls"]) == 100
    sink.close()
