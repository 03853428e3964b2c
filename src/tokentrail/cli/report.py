"""`tokentrail report`: calls, errors, tokens, cost and latency grouped by any dimension and
period, from the local database (no server needed) or a running collector.

The numbers come from the collector's usage aggregation (`server/db/usage.py`, read directly
or through `GET /v1/usage`), so a report and the API always agree. The total line is its own
ungrouped aggregate, which also gives exact overall p50/p95.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from tokentrail.cli._format import console, count, money, ms
from tokentrail.cli._usage_source import (
    TIME_KEYS,
    ApiKeyOpt,
    DbOpt,
    FeatureOpt,
    ProjectOpt,
    Query,
    SourceError,
    TenantOpt,
    UntilOpt,
    UrlOpt,
    UsageSource,
    UserOpt,
    fail,
    open_source,
    parse_by,
    parse_when,
)
from tokentrail.cli.app import app

MEASURES: tuple[str, ...] = (
    "calls",
    "errors",
    "unpriced_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_cost",
    "p50_ms",
    "p95_ms",
)
_LABELS = {"user_id": "user", "tenant_id": "tenant", "session_id": "session"}


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Report:
    group_by: tuple[str, ...]
    query: Query
    rows: list[dict[str, Any]]
    total: dict[str, Any]  # the ungrouped aggregate (zeros when nothing matched)
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "since": None if self.query.since is None else self.query.since.isoformat(),
            "until": None if self.query.until is None else self.query.until.isoformat(),
            "filters": dict(self.query.equals),
            "group_by": list(self.group_by),
            "rows": self.rows,
            "total": self.total,
        }


def _empty_total() -> dict[str, Any]:
    return {m: (None if m.endswith("_ms") else "0" if m == "total_cost" else 0) for m in MEASURES}


def build_report(source: UsageSource, group_by: tuple[str, ...], query: Query) -> Report:
    rows = source.usage(group_by, query)
    if not any(key in TIME_KEYS for key in group_by):
        # without a time axis, the biggest spenders first (ties: as the API orders them)
        rows = sorted(rows, key=lambda r: -Decimal(r["total_cost"]))
    totals = source.usage((), query) if rows else []
    total = {m: totals[0][m] for m in MEASURES} if totals else _empty_total()
    return Report(group_by, query, rows, total, source.label)


# ---- output -------------------------------------------------------------------------------
def render_table(report: Report, out: Console = console, *, title: str | None = None) -> None:
    if not report.rows:
        out.print(f"no calls recorded from {report.query.describe()} in {report.source}")
        return
    by = ", ".join(_LABELS.get(k, k) for k in report.group_by) or "all calls"
    table = Table(title=title or f"usage by {by}: {report.query.describe()}", header_style="bold", show_footer=True)
    total_cost = Decimal(report.total["total_cost"])
    for i, key in enumerate(report.group_by):
        table.add_column(_LABELS.get(key, key), footer="[bold]total[/bold]" if i == 0 else "")
    show_unpriced = bool(report.total["unpriced_calls"])
    numeric: list[tuple[str, str | None, Any]] = [
        ("calls", "calls", count),
        ("errors", "errors", count),
        *([("unpriced", "unpriced_calls", count)] if show_unpriced else []),
        ("input", "input_tokens", count),
        ("cache read", "cache_read_tokens", count),
        ("cache write", "cache_write_tokens", count),
        ("output", "output_tokens", count),
        ("reasoning", "reasoning_tokens", count),
        ("cost", "total_cost", money),
        ("share", None, None),
        ("p50 ms", "p50_ms", ms),
        ("p95 ms", "p95_ms", ms),
    ]
    for header, measure, fmt in numeric:
        footer = ("100%" if total_cost else "-") if measure is None else fmt(report.total[measure])
        table.add_column(header, justify="right", footer=f"[bold]{footer}[/bold]" if header == "cost" else footer)
    for row in report.rows:
        cells = [_cell(row.get(key)) for key in report.group_by]
        for _, measure, fmt in numeric:
            if measure is None:
                cells.append(_share(Decimal(row["total_cost"]), total_cost))
            elif measure == "total_cost" and row["unpriced_calls"] == row["calls"]:
                cells.append("-")  # nothing in this group has a price: not "$0"
            else:
                cells.append(fmt(row[measure]))
        table.add_row(*cells)
    out.print(table)
    if show_unpriced:
        out.print(
            f"{report.total['unpriced_calls']:,} calls have no known price: they are counted but not in the cost "
            "(never $0)."
        )


def _cell(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _share(part: Decimal, whole: Decimal) -> str:
    if not whole:
        return "-"
    return f"{part / whole * 100:.1f}%"


def write_csv(report: Report, stream: TextIO) -> None:
    """One line per group: the group keys, then every measure; costs as exact decimals."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*report.group_by, *MEASURES])
    for row in report.rows:
        writer.writerow([*(row.get(k) or "" for k in report.group_by), *(_csv_value(row[m]) for m in MEASURES)])


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def write_json(report: Report, stream: TextIO) -> None:
    json.dump(report.to_json(), stream, indent=2)
    stream.write("\n")


# ---- command ------------------------------------------------------------------------------
@app.command("report")
def report(
    since: Annotated[
        str, typer.Option("--since", help="Start: 7d, 12h, 30m, 2w, a date, an ISO time, or 'all'.")
    ] = "7d",
    until: UntilOpt = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Group by model, provider, user, tenant, feature, project, session, operation, status and/or one "
            "of hour, day, week, month (repeatable or comma-separated). Default: model.",
        ),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")] = Format.TABLE,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    project: ProjectOpt = None,
    user: UserOpt = None,
    tenant: TenantOpt = None,
    feature: FeatureOpt = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Calls, errors, tokens, cost and p50/p95 latency by any dimension and period."""
    try:
        keys = parse_by(by)
        query = Query.build(
            parse_when(since, "--since"),
            parse_when(until, "--until"),
            provider=provider,
            model=model,
            project=project,
            user_id=user,
            tenant_id=tenant,
            feature=feature,
        )
        with open_source(db, url, api_key) as source:
            result = build_report(source, keys, query)
    except SourceError as exc:
        raise fail(exc) from None
    if output_format is Format.CSV:
        write_csv(result, sys.stdout)
    elif output_format is Format.JSON:
        write_json(result, sys.stdout)
    else:
        render_table(result)


__all__ = ["MEASURES", "Format", "Report", "build_report", "render_table", "report", "write_csv", "write_json"]
