"""`tokentrail reprice`: recompute the cost of stored calls with the current catalog and
overrides, and show the difference (`--dry-run` changes nothing).

Works on the database directly (the SDK's SQLite file by default, or `--db URL`), through the
collector's storage code: calls, their JSON records and the rollups are updated together,
batch by batch. `POST /v1/reprice` does the same on a running collector.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tokentrail.cli._format import money
from tokentrail.cli._usage_source import SourceError, parse_when
from tokentrail.cli.app import app
from tokentrail.cli.serve import DB_HELP, load_settings
from tokentrail.core import ValidationError
from tokentrail.core.columns import to_micros
from tokentrail.pricing import PRICES_ENV, PriceEngine
from tokentrail.server.db import migrate
from tokentrail.server.db import reprice as repricing
from tokentrail.server.db.engine import Database

console = Console(width=None if Console().is_terminal else 160)
WHEN_HELP = "7d, 12h, 30m, 2w (before now), a date (YYYY-MM-DD) or an ISO time."


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _micros(value: str | None, option: str) -> int | None:
    try:
        when = parse_when(value, option)
    except SourceError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    return to_micros(when) if when is not None else None


@app.command("reprice")
def reprice(
    db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
    since: Annotated[str | None, typer.Option("--since", help=f"Calls started from then. {WHEN_HELP}")] = None,
    until: Annotated[str | None, typer.Option("--until", help=f"Calls started before then. {WHEN_HELP}")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Only this project's calls.")] = None,
    prices: Annotated[
        str | None, typer.Option("--prices", help=f"TOML price overrides file (default: ${PRICES_ENV}).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the difference, change nothing.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Calls per transaction.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Reprice stored calls with the current prices; the provider-reported cost keeps winning."""
    lo, hi = _micros(since, "--since"), _micros(until, "--until")
    if lo is not None and hi is not None and hi < lo:
        raise _fail("--until is before --since", 2)
    try:
        engine = PriceEngine(overrides=prices or os.environ.get(PRICES_ENV) or None)
    except ValidationError as exc:
        raise _fail(str(exc), 2) from None
    settings = load_settings(database_url=db)
    database = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        if migrate.current(database.engine) != migrate.head():
            raise _fail(f"{database.display_url} is not migrated: run `tokentrail db upgrade`", 1)
        total = repricing.count_calls(database, since=lo, until=hi, project=project)
        progress = Progress(
            TextColumn("[bold]repricing" + (" (dry run)" if dry_run else "")),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=as_json,
        )
        with progress:
            task = progress.add_task("calls", total=total)
            report = repricing.reprice(
                database,
                engine,
                since=lo,
                until=hi,
                project=project,
                dry_run=dry_run,
                batch_size=batch_size,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    _print(report, repricing.describe_range(lo, hi))


def _print(report: repricing.RepriceReport, period: str) -> None:
    verb = "would change" if report.dry_run else "changed"
    console.print(f"calls from {period}: {report.examined:,} examined, {report.changed:,} {verb}")
    summary = Table(show_header=True, header_style="bold")
    for column in ("", "before", "after", "difference"):
        summary.add_column(column, justify="right" if column else "left")
    delta = report.delta
    summary.add_row("total cost", money(report.old_total), money(report.new_total), _signed(delta))
    console.print(summary)
    if report.newly_priced or report.newly_unpriced:
        console.print(f"newly priced: {report.newly_priced:,}  newly unpriced: {report.newly_unpriced:,}")
    models = report.by_model()
    if models:
        table = Table(title="by model", header_style="bold")
        for column in ("provider", "model", "calls", "changed", "before", "after", "difference"):
            table.add_column(column, justify="left" if column in ("provider", "model") else "right")
        for m in models:
            table.add_row(
                m.provider or "-",
                m.model or "-",
                f"{m.calls:,}",
                f"{m.changed:,}",
                money(m.old_total),
                money(m.new_total),
                _signed(m.delta),
            )
        console.print(table)
    console.print(f"prices: {report.price_version}")
    if report.dry_run and report.changed:
        console.print("dry run: nothing was written; run again without --dry-run to apply")


def _signed(value: Decimal) -> str:
    text = money(abs(value))
    return f"-{text}" if value < 0 else (f"+{text}" if value else text)
