"""Collector ingest benchmark (SPEC §9), printed as figures; targets are reported, never asserted.

    python bench/ingest.py                              # SQLite and PostgreSQL
    python bench/ingest.py --db sqlite --records 200000 --workers 2
    python bench/ingest.py --pg postgresql://postgres@127.0.0.1:5432/test

Three figures in the same run, so machine noise cancels in their ratios:
  - HTTP into SQLite: `tokentrail serve` (a child process, --workers W) on a fresh file;
    C client connections send pre-built gzip bodies of B records each (the SDK collector
    sink's wire format), over keep-alive; the time is first request to last acknowledgement
    (every batch is committed, idempotency-checked and added to the rollups before its ack);
  - HTTP into PostgreSQL: the same into a fresh schema;
  - reference: a bare `sqlite3` `executemany` of the same rows (already converted, one
    transaction per batch) into a file with the same schema and synchronous setting.
Targets: >= 25,000 records/s into SQLite, >= 15,000/s into PostgreSQL, and HTTP into
SQLite at least half the reference rate.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg

from tokentrail.core import Attribution, LLMCall, PerformanceMetrics, ResponseMetadata, TokenUsage
from tokentrail.core.columns import record_json
from tokentrail.pricing import calculate_cost
from tokentrail.server.db import migrate
from tokentrail.server.db.calls import INSERT_COLUMNS, call_row
from tokentrail.server.db.engine import Database

ADMIN_KEY = "bench-admin-key-0123456789abcdef"
_SERVE = (
    "import sys; import tokentrail.cli.serve; from tokentrail.cli.app import app; sys.argv[0] = 'tokentrail'; app()"
)


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


def make_records(n: int) -> list[LLMCall]:
    """Realistic records: usage with cache reads, exact cost, attribution, metadata, timings."""
    models = ["gpt-4o", "gpt-4o-mini", "o3-mini", "claude-3-5-sonnet-latest"]
    start = datetime(2025, 10, 1, tzinfo=UTC)
    out = []
    costs = {}
    for i in range(n):
        model = models[i % len(models)]
        provider = "anthropic" if model.startswith("claude") else "openai"
        usage = TokenUsage.build(input_tokens=1000 + i % 3000, output_tokens=50 + i % 400, cache_read_tokens=512)
        key = (provider, model, usage.input_tokens, usage.output_tokens)
        cost = costs.get(key)
        if cost is None:
            cost = costs[key] = calculate_cost(provider, model, usage, at=start)
        at = start + timedelta(seconds=i * 2.6)  # 1,000,000 calls span 30 days
        out.append(
            LLMCall.new(
                started_at=at,
                completed_at=at + timedelta(milliseconds=200 + i % 2000),
                provider=provider,
                request_model=model,
                token_usage=usage,
                cost_metrics=cost,
                performance_metrics=PerformanceMetrics(total_duration_ms=200.0 + i % 2000),
                response_metadata=ResponseMetadata(finish_reason="stop", request_id=f"req_{i}"),
                attribution=Attribution(
                    project=f"project-{i % 3}", user_id=f"user-{i % 100}", feature=f"feature-{i % 5}", tenant_id="acme"
                ),
                metadata={"env": "prod", "experiment": f"exp-{i % 7}"},
            )
        )
    return out


def bodies(records: list[LLMCall], batch: int) -> list[bytes]:
    """What the SDK collector sink sends: gzip (level 1) of {"calls": [...]}."""
    lines = [record_json(r.to_dict()).encode() for r in records]
    return [
        gzip.compress(b'{"calls":[' + b",".join(lines[i : i + batch]) + b"]}", compresslevel=1, mtime=0)
        for i in range(0, len(lines), batch)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_rate(db_url: str, payloads: list[bytes], n: int, workers: int, clients: int) -> float:
    port = free_port()
    env = {**os.environ, "TOKENTRAIL_ADMIN_KEY": ADMIN_KEY}
    args = [sys.executable, "-c", _SERVE, "serve", "--db", db_url, "--port", str(port), "--log-level", "warning"]
    args += ["--workers", str(workers)]
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        headers = {
            "Authorization": f"Bearer {ADMIN_KEY}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        accepted = [0] * clients
        errors: list[str] = []

        def send(index: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for body in payloads[index::clients]:
                conn.request("POST", "/v1/calls", body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200:
                    errors.append(f"{response.status} {answer[:200]!r}")
                    return
                accepted[index] += json.loads(answer)["accepted"]
            conn.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        if errors or sum(accepted) != n:
            raise RuntimeError(f"ingest failed: accepted {sum(accepted)} of {n}; {errors[:3]}")
        return n / elapsed
    finally:
        server.terminate()
        server.wait(30)


def reference_rate(path: Path, records: list[LLMCall], batch: int) -> float:
    """Bare sqlite3 executemany of the same (already converted) rows, same schema."""
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    db.dispose()
    rows = [call_row(r) for r in records]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    marks = ", ".join("?" * len(INSERT_COLUMNS))
    sql = f"INSERT INTO calls ({', '.join(INSERT_COLUMNS)}) VALUES ({marks}) ON CONFLICT(id) DO NOTHING"
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def pg_schema(base: str) -> tuple[str, str]:
    schema = f"tt_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}options={quote(f'-csearch_path={schema}')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client connections")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--pg", default=os.environ.get("TOKENTRAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"{args.records:,} records, batches of {args.batch}, {args.workers} server workers, {args.clients} clients")
    records = make_records(args.records)
    payloads = bodies(records, args.batch)
    print(f"body: {sum(len(p) for p in payloads) / len(records):.0f} gzip bytes per record")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["reference: bare sqlite3 executemany"] = reference_rate(Path(tmp) / "ref.db", records, args.batch)
        if args.db in ("sqlite", "both"):
            url = f"sqlite:///{Path(tmp) / 'served.db'}"
            results["HTTP into SQLite"] = http_rate(url, payloads, len(records), args.workers, args.clients)
        if args.db in ("postgresql", "both"):
            schema, url = pg_schema(args.pg)
            try:
                results["HTTP into PostgreSQL"] = http_rate(url, payloads, len(records), args.workers, args.clients)
            finally:
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    reference = results["reference: bare sqlite3 executemany"]
    print("| path | records/s | vs reference |")
    print("| --- | ---: | ---: |")
    for name, rate in results.items():
        print(f"| {name} | {rate:,.0f} | {rate / reference:.2f} |")
    targets = {"HTTP into SQLite": 25_000, "HTTP into PostgreSQL": 15_000}
    for name, target in targets.items():
        if name in results:
            verdict = "met" if results[name] >= target else "NOT met"
            print(f"{name}: target >= {target:,}/s {verdict}")
    if "HTTP into SQLite" in results:
        half = results["HTTP into SQLite"] >= reference / 2
        print(f"HTTP into SQLite >= half the reference: {'met' if half else 'NOT met'}")


if __name__ == "__main__":
    main()
