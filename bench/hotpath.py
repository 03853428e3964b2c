"""SDK hot-path micro-benchmarks (SPEC §9, "SDK overhead"): per-stage µs and end to end.

    python bench/hotpath.py                           # this tree
    python bench/hotpath.py --compare /tmp/old/src    # also another source tree, alternating
    python bench/hotpath.py --rounds 7 --calls 5000

Stages, each the median of `--rounds` rounds (GC off while timing a stage), in process CPU
time (less disturbed by other work on the machine than wall time):
  caller side: uuid7, the attribution lookup, pricing (`price_call`), the record's
    construction as the tracker does it, and a whole tracker (`track_llm_call` + `set_usage`
    + exit, or the instrumented setters) emitting into a queue nobody drains;
  worker side: `LLMCall.to_dict()`, the stdlib encoding of it, the record's JSON text as the
    sink makes it, `record_to_row` (the text included), the SQLite insert of already-built
    rows (`executemany`, batches of 512, WAL, the schema `connect` creates) and the sink's
    whole `write` per record.
"a | b" in a stage name: `a` where the tree has it (the fast path), else `b` (the old code).
End to end: a loop of `with track_llm_call("openai", "gpt-4o-mini") as t: t.set_usage(u)`
(and an "instrumented" variant that also sets the request parameters, the response model
and metadata, as the OpenAI instrumentation does), ended by `flush()`, into the default
SQLite sink in a temporary TOKENTRAIL_HOME, minus an empty loop of the same length: the
added µs per call, the background worker's share included. Records dropped by a full queue
would make that figure meaningless, so the run checks there were none. The end-to-end loop is
also reported in CPU time of the whole process: the caller and the worker (including SQLite's
work while it has released the GIL, which can overlap the caller on the second core).

`--compare PATH` runs this same script as a child process with `PYTHONPATH=PATH` (another
checkout's `src`, e.g. `git archive HEAD src | tar -x -C /tmp/old`), alternating with a child
on this tree, `--repeat` times, and prints the medians side by side. The script only uses
APIs both have, or falls back as described above.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STAGES: list[tuple[str, str]] = [
    ("uuid7", "caller"),
    ("attribution lookup", "caller"),
    ("pricing (price_call)", "caller"),
    ("record construction (build_call | LLMCall)", "caller"),
    ("tracker: enter + set_usage + exit (submit only)", "caller"),
    ("tracker, instrumented setters (submit only)", "caller"),
    ("to_dict", "worker"),
    ("json of the to_dict (stdlib encoder)", "worker"),
    ("record JSON text (to_json | to_dict + json)", "worker"),
    ("record_to_row (JSON text + columns)", "worker"),
    ("SQLite insert (executemany, batch 512)", "worker"),
    ("sink.write per record (row + insert)", "worker"),
    ("end to end: manual tracker", "total"),
    ("end to end: instrumented setters", "total"),
    ("end to end CPU (both threads): manual tracker", "total"),
    ("end to end CPU (both threads): instrumented setters", "total"),
]


# Stages run on one thread, so they are timed in process CPU time: other work on the
# machine then inflates them much less than it does wall-clock time.
clock = time.process_time


def per_call(fn: Callable[[int], Any], n: int, rounds: int) -> float:
    """Median over rounds of CPU µs per iteration of `fn(n)` (which runs n iterations)."""
    results = []
    for _ in range(rounds):
        gc.collect()
        gc.disable()
        try:
            start = clock()
            fn(n)
            results.append((clock() - start) / n * 1e6)
        finally:
            gc.enable()
    return statistics.median(results)


def run_stages(rounds: int, calls: int) -> dict[str, float]:
    # The default runtime (the SQLite sink) lives in a temporary home for the whole run.
    home = tempfile.mkdtemp(prefix="tt-hotpath-")
    os.environ["TOKENTRAIL_HOME"] = home
    os.environ.pop("TOKENTRAIL_TESTING", None)

    from tokentrail.core import LLMCall, ModelOperation, TokenUsage
    from tokentrail.core.attribution import attribution, current_frame
    from tokentrail.core.columns import record_json, record_to_row
    from tokentrail.core.record import uuid7
    from tokentrail.core.settings import Settings
    from tokentrail.sinks.sqlite import INSERT_SQL, SQLiteSink, connect
    from tokentrail.tracking import runtime
    from tokentrail.tracking.costing import price_call
    from tokentrail.tracking.llm import track_llm_call

    out: dict[str, float] = {}
    usage = TokenUsage.build(input_tokens=900, output_tokens=120, cache_read_tokens=512)

    def instrumented_call() -> None:
        t = track_llm_call("openai", "gpt-4o-mini")
        t.start()
        t.set_request_params(temperature=0.2, max_tokens=256, stream=False)
        t.set_usage(usage)
        t.set_response_model("gpt-4o-mini-2024-07-18")
        t.set_response_metadata(response_id="chatcmpl-abc123", finish_reason="stop", system_fingerprint="fp_1")
        t.finish()

    with attribution(user_id="user-7", feature="search"):
        # a representative record: what the instrumented path emits
        captured: list[LLMCall] = []
        runtime.configure(sinks=["memory"])
        runtime.add_tap(captured.append)
        instrumented_call()
        runtime.remove_tap(captured.append)
        runtime.reset()
        record = captured[0]

        def s_uuid(n: int) -> None:
            for _ in range(n):
                uuid7()

        def s_frame(n: int) -> None:
            for _ in range(n):
                current_frame()

        at = record.started_at

        def s_price(n: int) -> None:
            for _ in range(n):
                price_call("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", usage, None, at=at,
                           service_tier=None, estimated=False, reported_cost=None)  # fmt: skip

        # how the tracker builds its record: `build_call` where the tree has it
        construct = getattr(importlib.import_module("tokentrail.core.record"), "build_call", None) or LLMCall
        full = [getattr(record, name) for name in LLMCall.__dataclass_fields__]  # type: ignore[attr-defined]
        assert construct(*full) == record  # both take the fields positionally, in order

        def s_construct(n: int) -> None:
            for _ in range(n):
                construct(*full)

        out["uuid7"] = per_call(s_uuid, calls * 4, rounds)
        out["attribution lookup"] = per_call(s_frame, calls * 4, rounds)
        out["pricing (price_call)"] = per_call(s_price, calls * 2, rounds)
        out["record construction (build_call | LLMCall)"] = per_call(s_construct, calls * 2, rounds)

        # trackers emitting into a pipeline whose worker never drains (a huge flush interval,
        # batch size beyond the round): the caller's share alone
        def caller_only(body: Callable[[], None]) -> Callable[[int], None]:
            def run(n: int) -> None:
                runtime.configure(sinks=["memory"], queue_size=n + 10, batch_size=n + 10, flush_interval=3600)
                pipeline = runtime.get_runtime().pipeline
                start = clock()
                for _ in range(n):
                    body()
                elapsed = clock() - start
                assert pipeline.stats().queued == n
                runtime.reset()
                timings.append(elapsed)

            return run

        def manual() -> None:
            with track_llm_call("openai", "gpt-4o-mini") as t:
                t.set_usage(usage)

        for label, body in (
            ("tracker: enter + set_usage + exit (submit only)", manual),
            ("tracker, instrumented setters (submit only)", instrumented_call),
        ):
            timings: list[float] = []
            for _ in range(rounds):
                gc.collect()
                gc.disable()
                try:
                    caller_only(body)(calls)
                finally:
                    gc.enable()
            out[label] = statistics.median(timings) / calls * 1e6

    # ---- worker side ------------------------------------------------------------------------
    def s_to_dict(n: int) -> None:
        for _ in range(n):
            record.to_dict()

    data = record.to_dict()

    def s_json(n: int) -> None:
        for _ in range(n):
            record_json(data)

    # the record's JSON text as the sink makes it: `to_json()` where the tree has it
    to_json = getattr(record, "to_json", None) or (lambda: record_json(record.to_dict()))
    assert to_json() == record_json(data)

    def s_text(n: int) -> None:
        for _ in range(n):
            to_json()

    def s_row(n: int) -> None:
        for _ in range(n):
            record_to_row(record)

    out["to_dict"] = per_call(s_to_dict, calls * 2, rounds)
    out["json of the to_dict (stdlib encoder)"] = per_call(s_json, calls * 2, rounds)
    out["record JSON text (to_json | to_dict + json)"] = per_call(s_text, calls * 2, rounds)
    out["record_to_row (JSON text + columns)"] = per_call(s_row, calls * 2, rounds)

    # distinct ids (and times, as in real traffic) so every row is a real insert
    records = [record.replace(id=uuid7()) for _ in range(calls * 2)]
    rows = [record_to_row(r) for r in records]
    db_counter = iter(range(10**6))

    def s_insert(n: int) -> None:
        conn = connect(Path(home) / f"insert-{next(db_counter)}.db")
        for i in range(0, n, 512):
            conn.execute("BEGIN")
            conn.executemany(INSERT_SQL, rows[i : i + 512])
            conn.execute("COMMIT")
        conn.close()

    def s_sink(n: int) -> None:
        sink = SQLiteSink(Settings.load(sqlite_path=str(Path(home) / f"sink-{next(db_counter)}.db")))
        for i in range(0, n, 512):
            sink.write(records[i : i + 512])
        sink.close()

    out["SQLite insert (executemany, batch 512)"] = per_call(s_insert, len(rows), rounds)
    out["sink.write per record (row + insert)"] = per_call(s_sink, len(records), rounds)

    # ---- end to end into the default SQLite sink ---------------------------------------------
    runtime.reset()  # the next record builds the default runtime: the SQLite sink in `home`

    def e2e(body: Callable[[], None]) -> tuple[float, float]:
        """Median added µs per call: wall clock, and CPU of the whole process (both threads)."""
        walls, cpus = [], []
        for _ in range(rounds):
            gc.collect()
            stats_before = runtime.stats()
            start, start_cpu = time.perf_counter(), clock()
            for _ in range(calls):
                body()
            assert runtime.flush(timeout=120)
            elapsed, elapsed_cpu = time.perf_counter() - start, clock() - start_cpu
            start, start_cpu = time.perf_counter(), clock()
            for _ in range(calls):
                pass
            empty, empty_cpu = time.perf_counter() - start, clock() - start_cpu
            stats = runtime.stats()
            assert stats.dropped == stats_before.dropped, "records were dropped: lower --calls"
            assert stats.written - stats_before.written == calls, (stats, stats_before)
            walls.append((elapsed - empty) / calls * 1e6)
            cpus.append((elapsed_cpu - empty_cpu) / calls * 1e6)
        return statistics.median(walls), statistics.median(cpus)

    with attribution(user_id="user-7", feature="search"):
        with track_llm_call("openai", "gpt-4o-mini") as warm:  # builds the default runtime
            warm.set_usage(usage)
        runtime.flush()
        assert isinstance(runtime.get_runtime().pipeline.sinks[0], SQLiteSink)
        for label, body in (("manual tracker", manual), ("instrumented setters", instrumented_call)):
            wall, cpu = e2e(body)
            out[f"end to end: {label}"] = wall
            out[f"end to end CPU (both threads): {label}"] = cpu
    runtime.shutdown()
    assert ModelOperation.CHAT  # both trees export it; keeps the import honest
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, load {load:.2f}"
    )


def child(src: str | None, rounds: int, calls: int) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, __file__, "--json", "--rounds", str(rounds), "--calls", str(calls)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--compare", metavar="SRC", help="another tree's src directory, run alternately")
    parser.add_argument("--repeat", type=int, default=2, help="alternations with --compare")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(run_stages(args.rounds, args.calls)))
        return
    print(machine())
    if not args.compare:
        results = run_stages(args.rounds, args.calls)
        print(f"{'stage':<52} {'side':<7} {'µs':>8}")
        for name, side in STAGES:
            print(f"{name:<52} {side:<7} {results[name]:>8.2f}")
        return
    old_runs: list[dict[str, float]] = []
    new_runs: list[dict[str, float]] = []
    for _ in range(args.repeat):
        old_runs.append(child(args.compare, args.rounds, args.calls))
        new_runs.append(child(None, args.rounds, args.calls))
    print(f"{'stage':<52} {'side':<7} {'before µs':>10} {'after µs':>10} {'ratio':>7}")
    for name, side in STAGES:
        old = statistics.median(run[name] for run in old_runs)
        new = statistics.median(run[name] for run in new_runs)
        print(f"{name:<52} {side:<7} {old:>10.2f} {new:>10.2f} {old / new if new else 0:>6.1f}x")


if __name__ == "__main__":
    main()
