"""Dashboard aggregation benchmark (SPEC §9): cost by model by day over 1,000,000 stored calls.

    python bench/query.py                          # SQLite and PostgreSQL, 1,000,000 calls
    python bench/query.py --db sqlite --calls 200000
    python bench/query.py --pg postgresql://postgres@127.0.0.1:5432/test

The calls are stored through the server's own ingest path (`store_rows`: the calls table and
the rollups, batches of 5,000) over 30 days, 4 models, 3 projects, 5 features, 100 users and
a 5% error rate. Then, each the median of `--repeat` runs in one read transaction:
  - rollups: `usage(group_by=model,day)` for the 30 whole days (what GET /v1/usage runs
    after authentication), which reads `rollup_day_core`;
  - rollups, ragged: the same for "the last 30 days" ending at an arbitrary minute, which
    adds whole hours from `rollup_hour` and the two sub-hour edges from the calls table;
  - rollups by user: group_by=user_id,day (the full-dimension `rollup_day`);
  - naive scan: the same cost-by-model-by-day computed with one GROUP BY over the calls table.
Target: at most 50 ms for the first figure on both databases.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import sqlalchemy as sa

from tokentrail.core import Attribution, CallStatus, ErrorInfo, LLMCall, PerformanceMetrics, TokenUsage
from tokentrail.core.columns import to_micros
from tokentrail.pricing import calculate_cost
from tokentrail.server.db import migrate, rollups
from tokentrail.server.db.calls import call_row, store_rows
from tokentrail.server.db.engine import Database
from tokentrail.server.db.filters import CallFilter
from tokentrail.server.db.models import DAY, calls
from tokentrail.server.db.usage import usage

START = datetime(2025, 9, 1, tzinfo=UTC)
MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-3-5-sonnet-latest"),
]


def templates() -> list[LLMCall]:
    """A pool of distinct records; each stored call is one of them with its own id and time."""
    out = []
    for m, (provider, model) in enumerate(MODELS):
        for variant in range(60):
            usage = TokenUsage.build(
                input_tokens=800 + 37 * variant, output_tokens=40 + 11 * variant, cache_read_tokens=256
            )
            error = variant % 20 == 0
            out.append(
                LLMCall.new(
                    started_at=START,
                    completed_at=START + timedelta(milliseconds=150 + 40 * variant),
                    provider=provider,
                    request_model=model,
                    token_usage=usage,
                    cost_metrics=calculate_cost(provider, model, usage, at=START),
                    performance_metrics=PerformanceMetrics(total_duration_ms=150.0 + 40 * variant),
                    status=CallStatus.ERROR if error else CallStatus.OK,
                    error=ErrorInfo(type="RateLimitError") if error else None,
                    attribution=Attribution(
                        project=f"project-{variant % 3}",
                        user_id=f"user-{(variant * 7 + m) % 100}",
                        feature=f"feature-{variant % 5}",
                    ),
                    metadata={"env": "prod"},
                )
            )
    return out


def load(db: Database, n: int, batch: int = 5000) -> float:
    pool = templates()
    span = 30 * 86_400_000_000  # 30 days in microseconds
    started = time.perf_counter()
    for first in range(0, n, batch):
        rows = []
        for i in range(first, min(n, first + batch)):
            template = pool[(i * 7919) % len(pool)]
            at = START + timedelta(microseconds=i * span // n)
            call = template.replace(
                id=str(uuid.UUID(int=i + 1)),
                started_at=at,
                completed_at=at + (template.completed_at - template.started_at),
            )
            rows.append(call_row(call))
        with db.write() as conn:
            store_rows(conn, rows)
    return time.perf_counter() - started


def timed(db: Database, fn, repeat: int) -> tuple[float, object]:
    samples = []
    result = None
    for _ in range(repeat):
        with db.read() as conn:
            t = time.perf_counter()
            result = fn(conn)
            samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), result


def naive(conn) -> list:
    model = sa.func.coalesce(calls.c.request_model, calls.c.provider_model)
    day = calls.c.started_at - calls.c.started_at % sa.literal_column(str(DAY))
    query = (
        sa.select(model, day, sa.func.count(), sa.func.sum(calls.c.total_cost))
        .where(calls.c.started_at >= to_micros(START), calls.c.started_at < to_micros(START + timedelta(days=30)))
        .group_by(model, day)
    )
    return conn.execute(query).all()


def run(name: str, url: str, n: int, repeat: int) -> dict[str, float]:
    db = Database(url, sqlite_synchronous="NORMAL")
    try:
        migrate.upgrade(db.engine)
        load_s = load(db, n)
        rollups.catch_up(db)
        with db.read() as conn:
            sizes = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("calls", "rollup_hour", "rollup_day", "rollup_day_core")
            }
        if db.dialect_name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
        whole = CallFilter(since=to_micros(START), until=to_micros(START + timedelta(days=30)))
        end = START + timedelta(days=29, hours=13, minutes=27, seconds=12)
        ragged = CallFilter(since=to_micros(end - timedelta(days=30)), until=to_micros(end))
        figures = {}
        figures["rollups: model,day, 30 whole days"], result = timed(
            db, lambda c: usage(c, ["model", "day"], whole), repeat
        )
        assert result.sources == ["rollup_day_core"], result.sources
        total = sum(row["calls"] for row in result.rows)
        figures["rollups: model,day, last 30 days (ragged)"], _ = timed(
            db, lambda c: usage(c, ["model", "day"], ragged), repeat
        )
        figures["rollups: user_id,day, 30 whole days"], by_user = timed(
            db, lambda c: usage(c, ["user_id", "day"], whole), repeat
        )
        figures["naive scan of calls: model,day"], scanned = timed(db, naive, max(3, repeat // 5))
        assert sum(r[2] for r in scanned) == total == n, (total, n)
        print(f"\n{name}: {n:,} calls loaded in {load_s:.0f} s ({n / load_s:,.0f}/s through store_rows); rows: {sizes}")
        print(f"{len(result.rows)} model-day rows, {len(by_user.rows)} user-day rows")
        return figures
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--pg", default=os.environ.get("TOKENTRAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.db in ("sqlite", "both"):
            results["SQLite"] = run("SQLite", f"sqlite:///{Path(tmp) / 'query.db'}", args.calls, args.repeat)
        if args.db in ("postgresql", "both"):
            schema = f"tt_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            separator = "&" if "?" in args.pg else "?"
            url = f"{args.pg}{separator}options={quote(f'-csearch_path={schema}')}".replace(
                "postgresql://", "postgresql+psycopg://", 1
            )
            try:
                results["PostgreSQL"] = run("PostgreSQL", url, args.calls, args.repeat)
            finally:
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    names = list(next(iter(results.values())))
    print("\n| query (median ms) | " + " | ".join(results) + " |")
    print("| --- |" + " ---: |" * len(results))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{results[db][name]:.1f}" for db in results) + " |")
    for db, figures in results.items():
        verdict = "met" if figures["rollups: model,day, 30 whole days"] <= 50 else "NOT met"
        print(f"{db}: cost by model by day <= 50 ms: {verdict}")


if __name__ == "__main__":
    main()
