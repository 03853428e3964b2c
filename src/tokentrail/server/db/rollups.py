"""Rollups: additive sums per (bucket, dimensions) in each cube of `models.CUBES`, kept
current in the same transaction that stores the calls.

Ingest: `apply(conn, accumulate(rows))` with the rows actually inserted (duplicates add
nothing), so a rollup never counts a call twice or misses a committed one.

Catch-up: rows the SDK's SQLite sink wrote straight into the file carry `rolled_up` NULL.
`catch_up` claims them in chunks (marks them and returns their values in one UPDATE ...
RETURNING, so each row is folded in exactly once even with several instances) and adds them
to the cubes in the same transaction. The server runs it at start and before each usage
query; when nothing is pending it costs one look-up in a partial index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.core.columns import COLUMN_NAMES, TABLE
from tokentrail.server.db import dialect, latency
from tokentrail.server.db.engine import Database
from tokentrail.server.db.models import CUBES, DIMENSIONS, MEASURES, ROLLED_UP, TOKEN_SUMS, calls

# What a rollup needs from a stored call, in this order.
SOURCE_COLUMNS: tuple[str, ...] = (
    "started_at",
    "provider",
    "request_model",
    "provider_model",
    "project",
    "user_id",
    "tenant_id",
    "feature",
    "operation",
    "status",
    "duration_ms",
    *TOKEN_SUMS,
    "total_cost",
)
source_of_row = itemgetter(*(COLUMN_NAMES.index(c) for c in SOURCE_COLUMNS))  # a `calls` row tuple -> source
_N_SUMS = 9  # calls, errors, unpriced_calls, 5 token sums, total_cost: then the latency bins
_DIM_INDEX = {d: i for i, d in enumerate(DIMENSIONS)}
_CUBE_PICKS = tuple((cube, tuple(_DIM_INDEX[d] for d in cube.dimensions)) for cube in CUBES)

Deltas = dict[str, dict[tuple[Any, ...], list[int]]]


def accumulate(sources: Iterable[Sequence[Any]]) -> Deltas:
    """Sum source tuples (SOURCE_COLUMNS order) into per-cube deltas keyed (bucket, *dims)."""
    deltas: Deltas = {cube.name: {} for cube in CUBES}
    for src in sources:
        started = src[0]
        model = src[2] if src[2] is not None else src[3]
        dims = (
            src[1] or "",
            model or "",
            src[4] or "",
            src[5] or "",
            src[6] or "",
            src[7] or "",
            src[8] or "",
            src[9] or "",
        )
        cost = src[16]
        sums = (
            1,
            1 if src[9] == "error" else 0,
            1 if cost is None else 0,
            src[11] or 0,
            src[12] or 0,
            src[13] or 0,
            src[14] or 0,
            src[15] or 0,
            cost or 0,
        )
        duration = src[10]
        slot = _N_SUMS + latency.bin_of(duration) if duration is not None else None
        for cube, picks in _CUBE_PICKS:
            key = (started - started % cube.grain, *(dims[i] for i in picks))
            table = deltas[cube.name]
            acc = table.get(key)
            if acc is None:
                acc = table[key] = [0] * len(MEASURES)
            for i in range(_N_SUMS):
                acc[i] += sums[i]
            if slot is not None:
                acc[slot] += 1
    return deltas


def apply(conn: Connection, deltas: Deltas) -> None:
    """Add the deltas to the cubes (concurrency-safe additive upserts)."""
    for cube in CUBES:
        rows = [(*key, *acc) for key, acc in deltas[cube.name].items()]
        dialect.upsert_add(conn, cube.name, ("bucket", *cube.dimensions), MEASURES, rows)


def pending(conn: Connection) -> bool:
    """Whether some stored call is not in the rollups yet (served by a partial index)."""
    return conn.execute(sa.select(calls.c.id).where(calls.c[ROLLED_UP].is_(None)).limit(1)).first() is not None


def catch_up(db: Database, *, chunk: int = 5000) -> int:
    """Fold every call missing from the rollups into them; returns how many were folded."""
    with db.read() as conn:
        if not pending(conn):
            return 0
    folded = 0
    while True:
        with db.write() as conn:
            rows = dialect.claim_unrolled(conn, TABLE, ROLLED_UP, SOURCE_COLUMNS, chunk)
            apply(conn, accumulate(rows))
        folded += len(rows)
        if len(rows) < chunk:
            return folded


__all__ = ["SOURCE_COLUMNS", "Deltas", "accumulate", "apply", "catch_up", "pending", "source_of_row"]
