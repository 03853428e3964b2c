"""Usage aggregates (`GET /v1/usage`): sums of calls, errors, tokens and cost, and p50/p95
latency, grouped by any dimensions and one time bucket.

Planning: the time range is cut into the parts each source can answer exactly —
whole days from a day cube, whole hours from `rollup_hour`, and the sub-hour edges from the
calls table — and the parts are merged. A filter or grouping no cube has (session_id,
min_cost, metadata) reads the calls table for the whole range. Among the day cubes the
smallest one holding every needed dimension is read (`rollup_day_core` when neither user_id
nor tenant_id is involved). Week and month buckets are folded from days in Python.
Everything is read in one snapshot, so the parts agree with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.core import ValidationError
from tokentrail.core.columns import from_micros, from_pico
from tokentrail.server.db import latency
from tokentrail.server.db.filters import (
    CallFilter,
    call_conditions,
    cube_conditions,
    model_expression,
    range_conditions,
)
from tokentrail.server.db.models import CUBES, DAY, HOUR, MEASURES, TOKEN_SUMS, Cube, calls

DIMENSION_KEYS: tuple[str, ...] = (
    "provider",
    "model",
    "project",
    "user_id",
    "session_id",
    "tenant_id",
    "feature",
    "operation",
    "status",
)
TIME_KEYS: tuple[str, ...] = ("hour", "day", "week", "month")
GROUP_KEYS: tuple[str, ...] = DIMENSION_KEYS + TIME_KEYS
_N_SUMS = 9
_HOUR_CUBE = next(c for c in CUBES if c.grain == HOUR)
_DAY_CUBES = sorted((c for c in CUBES if c.grain == DAY), key=lambda c: len(c.dimensions))


@dataclass(frozen=True, slots=True)
class UsageResult:
    rows: list[dict[str, Any]]
    sources: list[str]  # tables read, e.g. ["rollup_day_core", "rollup_hour", "calls"]


def parse_group_by(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    keys = tuple(part.strip() for part in text.split(",") if part.strip())
    for key in keys:
        if key not in GROUP_KEYS:
            raise ValidationError("group_by", f"{key!r} is not one of {', '.join(GROUP_KEYS)}")
    if len(set(keys)) != len(keys):
        raise ValidationError("group_by", "names a key twice")
    if sum(k in TIME_KEYS for k in keys) > 1:
        raise ValidationError("group_by", "can hold at most one of hour, day, week, month")
    return keys


def usage(conn: Connection, group_by: Sequence[str], flt: CallFilter) -> UsageResult:
    time_key = next((k for k in group_by if k in TIME_KEYS), None)
    dims = tuple(k for k in group_by if k in DIMENSION_KEYS)
    fine = None if time_key is None else HOUR if time_key == "hour" else DAY
    if flt.since is not None and flt.until is not None and flt.since >= flt.until:
        return UsageResult([], [])
    if flt.needs_calls_table or "session_id" in dims:
        segments: list[tuple[str, int | None, int | None]] = [("calls", flt.since, flt.until)]
    else:
        segments = plan(flt.since, flt.until, hourly=time_key == "hour")
    merged: dict[tuple[Any, ...], list[int]] = {}
    sources: list[str] = []
    needed = set(dims) | set(flt.equals)
    for source, lo, hi in segments:
        if source == "calls":
            name = "calls"
            _merge(merged, _from_calls(conn, dims, fine, flt, lo, hi))
        else:
            cube = _HOUR_CUBE if source == "hour" else next(c for c in _DAY_CUBES if needed <= set(c.dimensions))
            name = cube.name
            _merge(merged, _from_cube(conn, cube, dims, fine, flt, lo, hi))
        if name not in sources:
            sources.append(name)
    return UsageResult(_rows(merged, dims, time_key), sources)


def plan(since: int | None, until: int | None, *, hourly: bool) -> list[tuple[str, int | None, int | None]]:
    """Cut [since, until) into ("calls" | "hour" | "day", lo, hi) parts; None is unbounded."""
    h1 = None if since is None else _ceil(since, HOUR)
    h2 = None if until is None else until - until % HOUR
    if h1 is not None and h2 is not None and h1 >= h2:
        return [("calls", since, until)]
    parts: list[tuple[str, int | None, int | None]] = []
    if since is not None and h1 is not None and since < h1:
        parts.append(("calls", since, h1))
    if until is not None and h2 is not None and h2 < until:
        parts.append(("calls", h2, until))
    if hourly:
        return [*parts, ("hour", h1, h2)]
    d1 = None if h1 is None else _ceil(h1, DAY)
    d2 = None if h2 is None else h2 - h2 % DAY
    if d1 is not None and d2 is not None and d1 >= d2:
        return [*parts, ("hour", h1, h2)]
    if h1 is not None and d1 is not None and h1 < d1:
        parts.append(("hour", h1, d1))
    if h2 is not None and d2 is not None and d2 < h2:
        parts.append(("hour", d2, h2))
    return [*parts, ("day", d1, d2)]


def _floor(column: sa.ColumnElement[int], width: int) -> sa.ColumnElement[int]:
    """Bucket start in SQL; the width is literal SQL so SELECT and GROUP BY match textually."""
    literal: sa.ColumnElement[int] = sa.literal_column(str(int(width)))
    return column - column % literal


def _ceil(value: int, width: int) -> int:
    return -(-value // width) * width


# ---- sources ------------------------------------------------------------------------------
def _from_cube(
    conn: Connection,
    cube: Cube,
    dims: tuple[str, ...],
    fine: int | None,
    flt: CallFilter,
    lo: int | None,
    hi: int | None,
) -> list[tuple[Any, ...]]:
    table = cube.table
    keys: list[Any] = []
    if fine is not None:
        bucket = table.c.bucket if fine <= cube.grain else _floor(table.c.bucket, fine)
        keys.append(bucket.label("tb"))
    keys += [table.c[d] for d in dims]
    # BIGINT sums: PostgreSQL would otherwise return NUMERIC (Decimal) for each of them
    sums = [sa.cast(sa.func.sum(table.c[m]), sa.BigInteger) for m in MEASURES]
    query = sa.select(*keys, *sums).where(*range_conditions(table.c.bucket, lo, hi), *cube_conditions(flt, table))
    if keys:
        query = query.group_by(*keys)
    out = []
    for row in conn.execute(query):
        if row[len(keys)] is None:  # an empty aggregate without GROUP BY
            continue
        tb = row[0] if fine is not None else None
        values = [None if v == "" else v for v in row[len(keys) - len(dims) : len(keys)]]
        out.append(((tb, *values), list(row[len(keys) :])))
    return out  # type: ignore[return-value]


def _from_calls(
    conn: Connection, dims: tuple[str, ...], fine: int | None, flt: CallFilter, lo: int | None, hi: int | None
) -> list[tuple[Any, ...]]:
    keys: list[Any] = []
    if fine is not None:
        keys.append(_floor(calls.c.started_at, fine).label("tb"))
    keys += [(model_expression if d == "model" else calls.c[d]).label(d) for d in dims]
    bin_ = latency.bin_expression(calls.c.duration_ms).label("bin")
    error = sa.case((calls.c.status == "error", 1), else_=0)
    unpriced = sa.case((calls.c.total_cost.is_(None), 1), else_=0)
    sums = [
        sa.func.count(),
        sa.func.sum(error),
        sa.func.sum(unpriced),
        *(sa.func.coalesce(sa.func.sum(calls.c[t]), 0) for t in TOKEN_SUMS),
        sa.func.coalesce(sa.func.sum(calls.c.total_cost), 0),
    ]
    # The segment's bounds replace the filter's own: they lie within it, and one range on
    # started_at lets the planner use its narrow bounds (SQLite would take the wider one).
    untimed = replace(flt, since=None, until=None)
    conditions = [*call_conditions(untimed), *range_conditions(calls.c.started_at, lo, hi)]
    query = sa.select(*keys, bin_, *sums).where(*conditions).group_by(*keys, bin_)
    out = []
    n = len(keys)
    for row in conn.execute(query):
        tb = row[0] if fine is not None else None
        values = list(row[n - len(dims) : n])
        measures = [0] * len(MEASURES)
        for i in range(_N_SUMS):
            measures[i] = int(row[n + 1 + i])
        if row[n] is not None:
            measures[_N_SUMS + int(row[n])] = measures[0]
        out.append(((tb, *values), measures))
    return out


def _merge(into: dict[tuple[Any, ...], list[int]], parts: list[tuple[Any, ...]]) -> None:
    for key, measures in parts:
        acc = into.get(key)
        if acc is None:
            into[key] = list(measures)
        else:
            for i, v in enumerate(measures):
                acc[i] += v


# ---- output -------------------------------------------------------------------------------
def time_label(bucket: int, time_key: str) -> str:
    start = from_micros(bucket)
    if time_key == "hour":
        return start.strftime("%Y-%m-%dT%H:00:00Z")
    day = start.date()
    if time_key == "week":
        day -= timedelta(days=day.weekday())  # ISO weeks start on Monday
    elif time_key == "month":
        day = day.replace(day=1)
    return day.isoformat()


def format_usd(pico: int) -> str:
    if pico == 0:
        return "0"
    return format(from_pico(pico).normalize(), "f")


def _rows(
    merged: dict[tuple[Any, ...], list[int]], dims: tuple[str, ...], time_key: str | None
) -> list[dict[str, Any]]:
    grouped: dict[tuple[Any, ...], list[int]] = {}
    for (tb, *values), measures in merged.items():
        label = time_label(tb, time_key) if time_key is not None else None
        key = (label, *values)
        acc = grouped.get(key)
        if acc is None:
            grouped[key] = list(measures)
        else:
            for i, v in enumerate(measures):
                acc[i] += v
    rows = []
    for key in sorted(grouped, key=lambda k: tuple((v is None, v or "") for v in k)):
        m = grouped[key]
        if m[0] == 0:
            continue
        row: dict[str, Any] = {}
        if time_key is not None:
            row[time_key] = key[0]
        row.update(zip(dims, key[1:], strict=True))
        p50, p95 = latency.quantiles(m[_N_SUMS:], (0.5, 0.95))
        row.update(
            calls=m[0],
            errors=m[1],
            unpriced_calls=m[2],
            **dict(zip(TOKEN_SUMS, m[3:8], strict=True)),
            total_cost=format_usd(m[8]),
            p50_ms=p50,
            p95_ms=p95,
        )
        rows.append(row)
    return rows


__all__ = [
    "DIMENSION_KEYS",
    "GROUP_KEYS",
    "TIME_KEYS",
    "UsageResult",
    "format_usd",
    "parse_group_by",
    "plan",
    "time_label",
    "usage",
]
