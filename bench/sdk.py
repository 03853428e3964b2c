"""SDK sink benchmarks (SPEC §9), printed as figures; targets are reported, never asserted.

    python bench/sdk.py                      # both parts
    python bench/sdk.py --part sqlite --records 200000
    python bench/sdk.py --part spool --records 1000000

(a) sqlite: records/s sustained from one process into the SQLite sink through the pipeline
    (the background worker, batching, the final `flush()` included), target >= 20,000/s.
    Three figures in the same run, so machine noise cancels in their ratios:
      - worker: pre-built records submitted as fast as possible, time to written + flushed;
      - end to end: each record built in the loop (LLMCall.new with usage, cost, attribution)
        and submitted, the caller and the worker sharing the GIL, then flushed;
      - reference: a bare `sqlite3` executemany of the same rows (already converted).
(b) spool: RSS growth while 1,000,000 records go through the pipeline to the collector sink
    whose server is down (connections refused), so every record is written to the on-disk
    spool (bounded by spool_max_bytes; the oldest segments are dropped past it). Target
    <= 50 MB. RSS is read from /proc/self/statm after a 20,000-record warm-up and sampled
    every 50,000 records.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import socket
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from tokentrail.core import Attribution, CostBreakdown, LLMCall, TokenUsage
from tokentrail.core.columns import record_to_row
from tokentrail.core.settings import Settings
from tokentrail.sinks.collector import CollectorSink
from tokentrail.sinks.pipeline import Pipeline
from tokentrail.sinks.sqlite import INSERT_SQL, SQLiteSink, connect

PAGE = os.sysconf("SC_PAGE_SIZE")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def make_call(i: int) -> LLMCall:
    return LLMCall.new(
        provider="openai",
        request_model="gpt-4o-mini",
        provider_model="gpt-4o-mini-2024-07-18",
        token_usage=TokenUsage.build(input_tokens=900 + i % 300, output_tokens=120 + i % 40, cache_read_tokens=512),
        cost_metrics=CostBreakdown(
            input_cost=Decimal("0.0000582"),
            cache_read_cost=Decimal("0.0000384"),
            output_cost=Decimal("0.000072"),
            total_cost=Decimal("0.0001686"),
            pricing_status="priced",
            price_version="genai-prices 0.2.3",
        ),
        attribution=Attribution(user_id=f"user-{i % 97}", tenant_id=f"t-{i % 5}", feature="search", project="bench"),
    )


def submit_all(pipeline: Pipeline, calls: list[LLMCall]) -> int:
    """Submit every record; when the bounded queue is full, wait for the worker (as a
    well-behaved producer would) rather than drop. Returns how often it had to wait."""
    waits = 0
    for call in calls:
        while not pipeline.submit(call):
            waits += 1
            time.sleep(0.0005)
    return waits


def bench_sqlite(n: int) -> None:
    print(f"(a) SQLite sink through the pipeline, {n:,} records, batch 512")
    calls = [make_call(i) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        # worker throughput: pre-built records, queue large enough to hold them
        sink = SQLiteSink(Settings.load(home=tmp, sqlite_path=f"{tmp}/a.db"))
        pipeline = Pipeline([sink], queue_size=n, batch_size=512, flush_interval=0.05)
        start = time.perf_counter()
        submit_all(pipeline, calls)
        assert pipeline.flush(timeout=600)
        worker = time.perf_counter() - start
        stats = pipeline.stats()
        pipeline.shutdown()
        assert sink.written == n, (sink.written, stats)
        print(f"  worker (records pre-built):       {n / worker:>10,.0f} records/s  ({worker:.2f} s)")

        # end to end: records built in the loop, default bounded queue (10,000)
        sink = SQLiteSink(Settings.load(home=tmp, sqlite_path=f"{tmp}/b.db"))
        pipeline = Pipeline([sink], queue_size=10_000, batch_size=512, flush_interval=0.05)
        start = time.perf_counter()
        waits = 0
        for i in range(n):
            call = make_call(i)
            while not pipeline.submit(call):
                waits += 1
                time.sleep(0.0005)
        assert pipeline.flush(timeout=600)
        e2e = time.perf_counter() - start
        pipeline.shutdown()
        assert sink.written == n
        rate = n / e2e
        print(f"  end to end (built in the loop):   {rate:>10,.0f} records/s  ({e2e:.2f} s, {waits} full-queue waits)")

        # reference: bare executemany of the already-converted rows
        rows = [record_to_row(call) for call in calls]
        conn = connect(Path(tmp) / "c.db")
        start = time.perf_counter()
        for i in range(0, n, 512):
            conn.execute("BEGIN")
            conn.executemany(INSERT_SQL, rows[i : i + 512])
            conn.execute("COMMIT")
        bare = time.perf_counter() - start
        conn.close()
        print(f"  reference: bare executemany:      {n / bare:>10,.0f} records/s  (rows pre-converted)")
        print(f"  target >= 20,000 records/s: {'met' if n / worker >= 20_000 else 'NOT met'} (worker)")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_spool(n: int) -> None:
    print(f"(b) RSS with the collector down, {n:,} records to the disk spool")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(
            home=tmp, sinks=["collector"], collector_url=f"http://127.0.0.1:{closed_port()}", collector_max_retries=0
        )
        sink = CollectorSink(settings)
        pipeline = Pipeline([sink], settings.queue_size, settings.batch_size, settings.flush_interval)
        warmup = 20_000
        for i in range(warmup):
            while not pipeline.submit(make_call(i)):
                time.sleep(0.0005)
        assert pipeline.flush(timeout=600)
        base = rss_mb()
        peak = base
        start = time.perf_counter()
        waits = 0
        for i in range(n):
            call = make_call(i)
            while not pipeline.submit(call):
                waits += 1
                time.sleep(0.0005)
            if i % 50_000 == 0:
                peak = max(peak, rss_mb())
        assert pipeline.flush(timeout=600)
        elapsed = time.perf_counter() - start
        end = rss_mb()
        peak = max(peak, end)
        spool_bytes = sum(p.stat().st_size for p in (Path(tmp) / "spool").glob("seg-*"))
        stats = pipeline.stats()
        pipeline.shutdown(timeout=60)
        print(f"  RSS after warm-up {base:.1f} MB, after {n:,} records {end:.1f} MB, peak sampled {peak:.1f} MB")
        print(f"  growth {end - base:+.1f} MB (peak {peak - base:+.1f} MB); target <= 50 MB")
        print(
            f"  {n / elapsed:,.0f} records/s; spooled {stats.spooled:,} ({spool_bytes / 1e6:.0f} MB on disk, "
            f"bound {settings.spool_max_bytes / 1e6:.0f} MB), dropped past the bound {sink.dropped:,}, "
            f"queue waits {waits}"
        )
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux reports KiB
        print(f"  max RSS of the process (ru_maxrss): {max_rss:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("sqlite", "spool", "all"), default="all")
    parser.add_argument("--records", type=int, default=None, help="records per part (default 200,000 / 1,000,000)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    if args.part in ("sqlite", "all"):
        bench_sqlite(args.records or 200_000)
    if args.part in ("spool", "all"):
        bench_spool(args.records or 1_000_000)


if __name__ == "__main__":
    main()
