"""Prometheus metrics of the collector (`GET /metrics`), correct with any number of instances.

Two sources, both in the shared database, so every instance answers the same cluster-wide
totals and a scrape through the load balancer is enough:

- Calls (`tokentrail_tokens_total`, `tokentrail_cost_usd_total`, `tokentrail_calls_total`,
  `tokentrail_unpriced_calls_total`, `tokentrail_request_duration_ms`) are read from the
  rollups on each scrape (`rollup_day_core`, summed over all days): what was stored, by
  whichever instance or by the SDK writing the file directly, counted exactly once.
- Ingest counters (`tokentrail_ingest_requests_total`, `tokentrail_ingest_records_total`) are
  counted in memory by `IngestCounters` (an ASGI middleware watching the ingest endpoints) and
  added to the `ingest_counters` table at most `FLUSH_SECONDS` later, before a scrape, and at
  shutdown. A process killed with SIGKILL loses at most its last unflushed second of counts.

The request duration histogram comes from the rollups' latency bins: bucket `le` bounds are
every half decade from 1 ms to 1,000,000 ms (a duration exactly on a bound counts in the next
bucket up, as the bins are half-open). The rollups keep counts, not sums of durations, so the
histogram has `_bucket` and `_count` samples but no `_sum`; use `histogram_quantile`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from tokentrail.core.columns import from_pico
from tokentrail.server.db import ingest_counters, latency
from tokentrail.server.db.engine import Database
from tokentrail.server.db.models import CUBES, MEASURES, TOKEN_SUMS

logger = logging.getLogger("tokentrail.server")

PREFIX = "tokentrail_"
# Every name and label here is a classic Prometheus name, so the 0.0.4 text format (which
# every Prometheus version reads) is what `generate_latest` writes for them.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FLUSH_SECONDS = 1.0
LABELS: tuple[str, ...] = ("model", "provider", "operation", "status")
TOKEN_TYPES: tuple[str, ...] = ("input", "output", "cache_read", "cache_write", "reasoning", "total")
# Half-decade bucket bounds (ms) and, for each, how many latency bins lie below it.
BUCKET_BINS: tuple[int, ...] = tuple(range(0, latency.PER_DECADE * latency.DECADES + 1, latency.PER_DECADE // 2))
BUCKET_BOUNDS: tuple[float, ...] = tuple(latency.EDGES[i] for i in BUCKET_BINS)
# What the ingest middleware watches (POST only): the path is the `endpoint` label.
INGEST_ENDPOINTS: frozenset[str] = frozenset({"/v1/calls", "/traces", "/v1/traces"})
INGEST_STATE_KEY = "tokentrail_ingest"  # an endpoint may report {accepted, duplicates, rejected} here

_CUBE = next(c for c in CUBES if c.name == "rollup_day_core")
_N_SUMS = 9  # calls, errors, unpriced_calls, 5 token sums, total_cost; then the latency bins


# ---- ingest counters ----------------------------------------------------------------------
class IngestCounters:
    """This process's ingest counts not yet added to the database (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int], list[int]] = {}
        self._timer: threading.Timer | None = None
        self.db: Database | None = None

    def count(self, endpoint: str, status_code: int, accepted: int = 0, duplicates: int = 0, rejected: int = 0) -> None:
        with self._lock:
            acc = self._pending.setdefault((endpoint, status_code), [0, 0, 0, 0])
            acc[0] += 1
            acc[1] += accepted
            acc[2] += duplicates
            acc[3] += rejected
            if self._timer is None and self.db is not None:
                self._timer = threading.Timer(FLUSH_SECONDS, self._flush_quietly)
                self._timer.daemon = True
                self._timer.start()

    def take(self) -> dict[tuple[str, int], tuple[int, int, int, int]]:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._timer = None
        return {key: (acc[0], acc[1], acc[2], acc[3]) for key, acc in pending.items()}

    def restore(self, deltas: dict[tuple[str, int], tuple[int, int, int, int]]) -> None:
        """Put back counts a failed flush could not write."""
        with self._lock:
            for key, counts in deltas.items():
                acc = self._pending.setdefault(key, [0, 0, 0, 0])
                for i, value in enumerate(counts):
                    acc[i] += value

    def flush(self) -> None:
        """Add the pending counts to the database (raises if it cannot; nothing is lost)."""
        db = self.db
        if db is None:
            return
        deltas = self.take()
        if not deltas:
            return
        try:
            with db.write() as conn:
                ingest_counters.add(conn, deltas)
        except Exception:
            self.restore(deltas)
            raise

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # the database is away: keep the counts for the next flush
            logger.warning("tokentrail: could not store ingest counters: %s", exc)

    def close(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._flush_quietly()


def _record_counts(path: str, status: int, body: bytes) -> tuple[int, int, int]:
    """(accepted, duplicates, rejected) records of one ingest response."""
    if path == "/traces":
        return (1, 0, 0) if status == 201 else (0, 0, 1 if status == 400 else 0)
    if path != "/v1/calls" or not body:
        return 0, 0, 0
    try:
        payload = json.loads(body)
    except ValueError:
        return 0, 0, 0
    if status == 200 and isinstance(payload, dict):
        accepted, duplicates = payload.get("accepted"), payload.get("duplicates")
        if isinstance(accepted, int) and isinstance(duplicates, int):
            return accepted, duplicates, 0
    if status == 400 and isinstance(payload, dict) and isinstance(payload.get("detail"), list):
        # each refused record is listed as calls[i].<field>: count the distinct i
        bad = {str(e.get("field", "")).split(".", 1)[0] for e in payload["detail"] if isinstance(e, dict)}
        return 0, 0, len({b for b in bad if b.startswith("calls[")}) or 0
    return 0, 0, 0


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class IngestMetricsMiddleware:
    """Counts ingest requests and records (pure ASGI: other requests pass straight through),
    and flushes the counts when the application shuts down."""

    def __init__(self, app: ASGIApp, counters: IngestCounters) -> None:
        self.app = app
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        path = scope.get("path", "")
        if kind != "http" or scope.get("method") != "POST" or path not in INGEST_ENDPOINTS:
            await self.app(scope, receive, send)
            return
        status = 500
        body: list[bytes] = []

        async def watch(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and (status < 300 or status == 400):
                body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            reported = (scope.get("state") or {}).get(INGEST_STATE_KEY)
            if isinstance(reported, dict):
                counts = (
                    int(reported.get("accepted", 0)),
                    int(reported.get("duplicates", 0)),
                    int(reported.get("rejected", 0)),
                )
            else:
                counts = _record_counts(path, status, b"".join(body))
            self.counters.count(path, status, *counts)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> MutableMapping[str, Any]:
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                await run_in_threadpool(self.counters.close)  # before the app disposes the engine
            return message

        return wrapped


# ---- exposition ---------------------------------------------------------------------------
def _call_rows(conn: Connection, project: str | None) -> list[Any]:
    table = _CUBE.table
    sums = [sa.func.sum(table.c[m]).label(m) for m in MEASURES]
    query = sa.select(*(table.c[d] for d in LABELS), *sums).group_by(*(table.c[d] for d in LABELS))
    if project is not None:
        query = query.where(table.c.project == project)
    return list(conn.execute(query.order_by(*(table.c[d] for d in LABELS))))


def call_families(rows: list[Any]) -> Iterator[Metric]:
    labels = list(LABELS)
    tokens = CounterMetricFamily(
        PREFIX + "tokens", "Tokens of stored LLM calls by type (input includes cache reads and writes).",
        labels=[*labels[:3], "token_type", "status"],
    )  # fmt: skip
    cost = CounterMetricFamily(PREFIX + "cost_usd", "Cost of stored LLM calls in USD (priced calls).", labels=labels)
    calls = CounterMetricFamily(PREFIX + "calls", "Stored LLM calls.", labels=labels)
    unpriced = CounterMetricFamily(PREFIX + "unpriced_calls", "Stored calls without a known price.", labels=labels)
    duration = Metric(PREFIX + "request_duration_ms", "Duration of stored LLM calls (ms).", "histogram")
    for row in rows:
        values = [getattr(row, d) or "" for d in LABELS]
        model, provider, operation, status = values
        sums = [int(getattr(row, m) or 0) for m in MEASURES]
        by_type = dict(zip(TOKEN_SUMS, sums[3:8], strict=True))
        token_values = (
            by_type["input_tokens"],
            by_type["output_tokens"],
            by_type["cache_read_tokens"],
            by_type["cache_write_tokens"],
            by_type["reasoning_tokens"],
            by_type["input_tokens"] + by_type["output_tokens"],
        )
        for token_type, value in zip(TOKEN_TYPES, token_values, strict=True):
            tokens.add_metric([model, provider, operation, token_type, status], value)
        cost.add_metric(values, float(from_pico(sums[8])))
        calls.add_metric(values, sums[0])
        unpriced.add_metric(values, sums[2])
        bins = sums[_N_SUMS:]
        named = dict(zip(LABELS, values, strict=True))
        below = 0
        start = 0
        for bound_bin, bound in zip(BUCKET_BINS, BUCKET_BOUNDS, strict=True):
            # bins 0..bound_bin hold durations under EDGES[bound_bin]
            below += sum(bins[start : bound_bin + 1])
            start = bound_bin + 1
            duration.add_sample(duration.name + "_bucket", {**named, "le": _bound(bound)}, below)
        timed = sum(bins)
        duration.add_sample(duration.name + "_bucket", {**named, "le": "+Inf"}, timed)
        duration.add_sample(duration.name + "_count", named, timed)
    yield from (tokens, cost, calls, unpriced, duration)


def _bound(value: float) -> str:
    return f"{value:.6g}" if value != int(value) else f"{int(value)}.0"


def ingest_families(rows: list[Any]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        PREFIX + "ingest_requests", "Ingest requests by endpoint and HTTP status.", labels=["endpoint", "status_code"]
    )
    records = CounterMetricFamily(
        PREFIX + "ingest_records", "Records sent to the ingest endpoints by outcome.", labels=["result"]
    )
    totals = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for row in rows:
        requests.add_metric([row.endpoint, str(row.status_code)], int(row.requests))
        for result in totals:
            totals[result] += int(getattr(row, result))
    for result, value in totals.items():
        records.add_metric([result], value)
    yield from (requests, records)


class _Snapshot:
    """A collector yielding prepared families (a fresh registry per scrape)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def exposition(db: Database, counters: IngestCounters | None, *, project: str | None, admin: bool) -> bytes:
    """The Prometheus text of the whole cluster (a project's calls only, for a project key;
    ingest counters only for an admin key, as they describe the server, not a project)."""
    if counters is not None:
        try:
            counters.flush()
        except Exception as exc:
            logger.warning("tokentrail: could not store ingest counters: %s", exc)
    with db.read() as conn:
        families = list(call_families(_call_rows(conn, project)))
        if admin:
            families += list(ingest_families(ingest_counters.totals(conn)))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))  # type: ignore[arg-type]
    return generate_latest(registry)


__all__ = [
    "BUCKET_BOUNDS",
    "CONTENT_TYPE",
    "FLUSH_SECONDS",
    "INGEST_ENDPOINTS",
    "INGEST_STATE_KEY",
    "PREFIX",
    "TOKEN_TYPES",
    "IngestCounters",
    "IngestMetricsMiddleware",
    "exposition",
    "install",
]


def install(app: FastAPI) -> IngestCounters:
    """Count ingest requests of `app` (its `state.db` is where the counts go)."""
    counters = IngestCounters()
    counters.db = app.state.db
    app.state.ingest_counters = counters
    app.add_middleware(IngestMetricsMiddleware, counters=counters)
    return counters
