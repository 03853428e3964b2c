"""What the dashboard pages read. Aggregates come from `server/db/usage.py` (the rollups),
so a page costs a handful of small reads however many calls are stored; only the list of
top expensive calls touches the calls table, through an index (see `top_calls`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.core import ValidationError
from tokentrail.core.columns import to_micros, to_pico
from tokentrail.server.db import dialect
from tokentrail.server.db.filters import CallFilter, call_conditions, range_conditions
from tokentrail.server.db.models import TOKEN_SUMS, calls
from tokentrail.server.db.usage import format_usd, usage

# period key -> (label, length, spend-chart bucket)
PERIODS: dict[str, tuple[str, timedelta, str]] = {
    "24h": ("Last 24 hours", timedelta(hours=24), "hour"),
    "7d": ("Last 7 days", timedelta(days=7), "day"),
    "30d": ("Last 30 days", timedelta(days=30), "day"),
    "90d": ("Last 90 days", timedelta(days=90), "day"),
}
DEFAULT_PERIOD = "7d"
# Breakdown pages: URL name -> (usage dimension, singular label, plural label)
BREAKDOWNS: dict[str, tuple[str, str, str]] = {
    "user": ("user_id", "User", "Users"),
    "tenant": ("tenant_id", "Tenant", "Tenants"),
    "feature": ("feature", "Feature", "Features"),
    "model": ("model", "Model", "Models"),
    "provider": ("provider", "Provider", "Providers"),
    "project": ("project", "Project", "Projects"),
}
# Top calls: up to this many calls in range, read them all (time index); beyond, walk the
# cost index (see `top_calls`). Reading 10,000 rows takes about 10 ms on SQLite.
SMALL_RANGE = 10_000
STACKED_GROUPS = 5


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    label: str
    since: datetime  # inclusive
    now: datetime
    bucket: str  # "hour" | "day"

    @property
    def since_iso(self) -> str:
        return self.since.isoformat().replace("+00:00", "Z")


def resolve_period(key: str | None, now: datetime | None = None) -> Period:
    key = key or DEFAULT_PERIOD
    if key not in PERIODS:
        raise ValidationError("period", f"{key!r} is not one of {', '.join(PERIODS)}")
    label, length, bucket = PERIODS[key]
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    return Period(key=key, label=label, since=now - length, now=now, bucket=bucket)


def empty_row() -> dict[str, Any]:
    return {
        "calls": 0,
        "errors": 0,
        "unpriced_calls": 0,
        **dict.fromkeys(TOKEN_SUMS, 0),
        "total_cost": "0",
        "p50_ms": None,
        "p95_ms": None,
    }


def totals(conn: Connection, flt: CallFilter) -> dict[str, Any]:
    rows = usage(conn, (), flt).rows
    return rows[0] if rows else empty_row()


def ranked(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows by cost (then calls) descending, each with `share`: its cost over the largest."""
    ordered = sorted(rows, key=lambda r: (-Decimal(r["total_cost"]), -r["calls"], r[key] is None, r[key] or ""))
    top = max((Decimal(r["total_cost"]) for r in ordered), default=Decimal(0))
    most = max((r["calls"] for r in ordered), default=0)
    for row in ordered:
        # by cost when anything is priced, else by calls (bar length only; the text is exact)
        row["share"] = float(Decimal(row["total_cost"]) / top) if top else (row["calls"] / most if most else 0.0)
    return ordered


def grouped(conn: Connection, flt: CallFilter, dimension: str) -> list[dict[str, Any]]:
    return ranked(usage(conn, (dimension,), flt).rows, dimension)


ADDITIVE: tuple[str, ...] = ("calls", "errors", "unpriced_calls", *TOKEN_SUMS)


def fold(rows: list[dict[str, Any]], dimension: str) -> list[dict[str, Any]]:
    """Rows grouped by several dimensions summed up to one of them: the additive measures
    only (latency percentiles do not add, so they are left out)."""
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        acc = out.get(row[dimension])
        if acc is None:
            out[row[dimension]] = {
                dimension: row[dimension],
                **{m: row[m] for m in ADDITIVE},
                "cost": Decimal(row["total_cost"]),
            }
            continue
        for m in ADDITIVE:
            acc[m] += row[m]
        acc["cost"] += Decimal(row["total_cost"])
    for acc in out.values():
        acc["total_cost"] = format_usd_decimal(acc.pop("cost"))
    return list(out.values())


def format_usd_decimal(amount: Decimal) -> str:
    """The API's spelling of an amount (`usage.format_usd`): `0`, or every digit, no exponent."""
    return format_usd(to_pico(amount))


@dataclass(frozen=True, slots=True)
class Overview:
    total: dict[str, Any]
    series: dict[str, dict[str, Any]]
    groups: dict[str, list[dict[str, Any]]]  # dimension -> ranked rows (additive measures)
    projects: list[str | None]  # projects with calls in the period, whatever project is chosen
    top: list[dict[str, Any]]


def overview(conn: Connection, flt: CallFilter, period: Period, *, every_project: bool) -> Overview:
    """Everything the overview shows, in four aggregate reads of the rollups (dimensions that
    share a cube are read together and folded apart) and the top calls. `every_project`
    (admins): list every project of the period, whichever one `flt` names."""
    total = totals(conn, flt)
    series = over_time(conn, flt, period)
    models = usage(conn, ("project", "provider", "model"), replace(flt, equals={}) if every_project else flt).rows
    in_period = sorted({r["project"] for r in models}, key=lambda p: (p is None, p or ""))
    if "project" in flt.equals:
        models = [r for r in models if r["project"] == flt.equals["project"]]
    people = usage(conn, ("user_id", "feature"), flt).rows
    groups = {
        "model": ranked(fold(models, "model"), "model"),
        "provider": ranked(fold(models, "provider"), "provider"),
        "user_id": ranked(fold(people, "user_id"), "user_id"),
        "feature": ranked(fold(people, "feature"), "feature"),
    }
    top = top_calls(conn, flt, in_range=total["calls"], projects=in_period)
    return Overview(total=total, series=series, groups=groups, projects=in_period, top=top)


def bucket_keys(period: Period) -> list[tuple[str, str]]:
    """(API bucket label, short axis label) for every bucket of the period, oldest first."""
    out = []
    if period.bucket == "hour":
        at = period.since.replace(minute=0, second=0)
        while at <= period.now:
            out.append((at.strftime("%Y-%m-%dT%H:00:00Z"), at.strftime("%H:00")))
            at += timedelta(hours=1)
        return out
    day = period.since.date()
    while day <= period.now.date():
        out.append((day.isoformat(), day.strftime("%b %d").replace(" 0", " ")))
        day += timedelta(days=1)
    return out


def over_time(conn: Connection, flt: CallFilter, period: Period) -> dict[str, dict[str, Any]]:
    """Usage rows by time bucket, keyed by the bucket label."""
    return {row[period.bucket]: row for row in usage(conn, (period.bucket,), flt).rows}


def stacked_over_time(
    conn: Connection, flt: CallFilter, period: Period, dimension: str, groups: list[Any]
) -> dict[str, dict[Any, Decimal]]:
    """Cost by bucket for each of `groups` (values of `dimension`); the rest under "other"."""
    out: dict[str, dict[Any, Decimal]] = {}
    chosen = set(groups)
    for row in usage(conn, (dimension, period.bucket), flt).rows:
        group = row[dimension] if row[dimension] in chosen else OTHER
        slot = out.setdefault(row[period.bucket], {})
        slot[group] = slot.get(group, Decimal(0)) + Decimal(row["total_cost"])
    return out


class _Other:
    def __repr__(self) -> str:
        return "OTHER"


OTHER: Any = _Other()


def top_calls(
    conn: Connection, flt: CallFilter, *, in_range: int, projects: Sequence[str | None], limit: int = 10
) -> list[dict[str, Any]]:
    """The most expensive priced calls matching `flt`, most expensive first.

    `in_range` is how many calls match (known from the rollups) and `projects` every project
    they belong to (None for calls without one; ignored when `flt` names a project).
    - Up to `SMALL_RANGE` calls: read them through the time index and keep the top ones.
    - More: walk each project's part of `ix_calls_project_cost` from the most expensive
      call down; the time is checked from the index itself, and about limit x (calls of the
      project / calls in range) entries are visited before `limit` of them match.
    The choice is made here, not left to the planner: `x + 0` is not indexable, so it keeps
    a condition or an ordering from steering SQLite or PostgreSQL to the other index.
    """
    untimed = replace(flt, since=None, until=None, equals={k: v for k, v in flt.equals.items() if k != "project"})
    common = [*call_conditions(untimed), calls.c.total_cost.is_not(None)]
    columns = (calls.c.total_cost, calls.c.started_at, calls.c.id)
    scopes: Sequence[str | None] = [flt.equals["project"]] if "project" in flt.equals else projects
    found: list[Any] = []
    if in_range <= SMALL_RANGE:
        scope = [calls.c.project == flt.equals["project"]] if "project" in flt.equals else []
        query = (
            sa.select(*columns)
            .where(*scope, *common, *range_conditions(calls.c.started_at, flt.since, flt.until))
            .order_by((calls.c.total_cost + 0).desc(), calls.c.started_at.desc())
            .limit(limit)
        )
        found = list(conn.execute(query))
    else:
        for project in scopes:
            query = (
                sa.select(*columns)
                .where(
                    calls.c.project.is_(None) if project is None else calls.c.project == project,
                    *common,
                    *range_conditions(calls.c.started_at + 0, flt.since, flt.until),
                )
                .order_by(calls.c.total_cost.desc(), calls.c.started_at.desc())
                .limit(limit)
            )
            found.extend(conn.execute(query))
    found.sort(key=lambda row: (row.total_cost, row.started_at, row.id), reverse=True)
    ids = [row.id for row in found[:limit]]
    if not ids:
        return []
    records = {row.id: dialect.record_dict(row.record) for row in conn.execute(
        sa.select(calls.c.id, calls.c.record).where(calls.c.id.in_(ids))
    )}  # fmt: skip
    return [records[i] for i in ids if i in records]


def projects(conn: Connection, flt: CallFilter) -> list[str | None]:
    """Projects with calls in the filter's range, whatever project it names (None: calls
    without a project)."""
    rows = usage(conn, ("project",), replace(flt, equals={})).rows
    return [r["project"] for r in rows]


def period_filter(period: Period, project: str | None) -> CallFilter:
    return CallFilter(since=to_micros(period.since), equals={"project": project} if project is not None else {})


__all__ = [
    "BREAKDOWNS",
    "DEFAULT_PERIOD",
    "OTHER",
    "PERIODS",
    "SMALL_RANGE",
    "Overview",
    "Period",
    "bucket_keys",
    "empty_row",
    "fold",
    "grouped",
    "over_time",
    "overview",
    "period_filter",
    "projects",
    "ranked",
    "resolve_period",
    "stacked_over_time",
    "top_calls",
    "totals",
]
