"""`tokentrail export`: every recorded call in a time range as CSV, JSON Lines or Parquet.

Records are streamed page by page (cursor pagination, newest first) and written as they
arrive, so memory stays flat whatever the range. JSONL lines are the full records
(`LLMCall.to_dict()`); CSV and Parquet get one flat row per call (`FLAT_COLUMNS`), with
costs as exact decimals. A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import csv
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from tokentrail.cli._format import progress_bar
from tokentrail.cli._usage_source import (
    ApiKeyOpt,
    DbOpt,
    FeatureOpt,
    ProjectOpt,
    Query,
    SourceError,
    TenantOpt,
    UntilOpt,
    UrlOpt,
    UserOpt,
    fail,
    open_source,
    parse_when,
)
from tokentrail.cli.app import app
from tokentrail.core import MissingExtraError

# (column, kind) of the flat form; kind drives the Parquet type
FLAT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "str"),
    ("started_at", "str"),
    ("completed_at", "str"),
    ("duration_ms", "float"),
    ("operation", "str"),
    ("provider", "str"),
    ("request_model", "str"),
    ("provider_model", "str"),
    ("status", "str"),
    ("error_type", "str"),
    ("input_tokens", "int"),
    ("output_tokens", "int"),
    ("cache_read_tokens", "int"),
    ("cache_write_tokens", "int"),
    ("reasoning_tokens", "int"),
    ("total_tokens", "int"),
    ("pages", "int"),
    ("images", "int"),
    ("total_cost", "decimal"),
    ("pricing_status", "str"),
    ("project", "str"),
    ("user_id", "str"),
    ("session_id", "str"),
    ("tenant_id", "str"),
    ("feature", "str"),
    ("environment", "str"),
    ("service_name", "str"),
    ("workflow", "str"),
    ("streaming", "bool"),
    ("cache_hit", "bool"),
    ("attempt", "int"),
    ("time_to_first_token_ms", "float"),
    ("trace_id", "str"),
    ("metadata", "json"),
)
PARQUET_BATCH = 5000
# Parquet decimal: 38 digits, 18 after the point (exact for every catalog price; finer
# provider-reported figures are rounded half-even at 1e-18 USD)
_PARQUET_SCALE = 18


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


def flat_row(record: dict[str, Any]) -> dict[str, Any]:
    """One record as the flat CSV/Parquet row (absent values None)."""
    usage = record.get("token_usage") or {}
    units = record.get("units") or {}
    cost = record.get("cost_metrics") or {}
    attribution = record.get("attribution") or {}
    performance = record.get("performance_metrics") or {}
    error = record.get("error") or {}
    metadata = record.get("metadata")
    return {
        "id": record["id"],
        "started_at": record.get("started_at"),
        "completed_at": record.get("completed_at"),
        "duration_ms": _duration_ms(record.get("started_at"), record.get("completed_at")),
        "operation": record.get("operation"),
        "provider": record.get("provider"),
        "request_model": record.get("request_model"),
        "provider_model": record.get("provider_model"),
        "status": record.get("status"),
        "error_type": error.get("type"),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "cache_read_tokens": usage.get("cache_read_tokens"),
        "cache_write_tokens": usage.get("cache_write_tokens"),
        "reasoning_tokens": usage.get("reasoning_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "pages": units.get("pages"),
        "images": units.get("images"),
        "total_cost": cost.get("total_cost"),
        "pricing_status": cost.get("pricing_status"),
        **{key: attribution.get(key) for key in _ATTRIBUTION},
        "streaming": record.get("streaming"),
        "cache_hit": record.get("cache_hit"),
        "attempt": record.get("attempt"),
        "time_to_first_token_ms": performance.get("time_to_first_token_ms"),
        "trace_id": record.get("trace_id"),
        "metadata": None if metadata is None else json.dumps(metadata, separators=(",", ":"), sort_keys=True),
    }


_ATTRIBUTION = ("project", "user_id", "session_id", "tenant_id", "feature", "environment", "service_name", "workflow")


def _duration_ms(started: str | None, completed: str | None) -> float | None:
    if not started or not completed:
        return None
    delta = datetime.fromisoformat(completed) - datetime.fromisoformat(started)
    return delta.total_seconds() * 1000.0


# ---- writers ------------------------------------------------------------------------------
def write_jsonl(records: Iterator[dict[str, Any]], stream: TextIO, advance: Callable[[], None]) -> int:
    n = 0
    for record in records:
        stream.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        stream.write("\n")
        n += 1
        advance()
    return n


def write_csv(records: Iterator[dict[str, Any]], stream: TextIO, advance: Callable[[], None]) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    names = [name for name, _ in FLAT_COLUMNS]
    writer.writerow(names)
    n = 0
    for record in records:
        row = flat_row(record)
        writer.writerow([_csv(row[name]) for name in names])
        n += 1
        advance()
    return n


def _csv(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def load_pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or a MissingExtraError naming the `parquet` extra."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise MissingExtraError("parquet", "Parquet export") from None


def write_parquet(records: Iterator[dict[str, Any]], path: Path, advance: Callable[[], None]) -> int:
    pa, pq = load_pyarrow()
    kinds = {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "decimal": pa.decimal128(38, _PARQUET_SCALE),
        "json": pa.string(),
    }
    schema = pa.schema([(name, kinds[kind]) for name, kind in FLAT_COLUMNS])
    quantum = Decimal(1).scaleb(-_PARQUET_SCALE)
    n = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        batch: list[dict[str, Any]] = []
        for record in records:
            row = flat_row(record)
            if row["total_cost"] is not None:
                row["total_cost"] = Decimal(row["total_cost"]).quantize(quantum, rounding=ROUND_HALF_EVEN)
            batch.append(row)
            n += 1
            advance()
            if len(batch) >= PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return n


# ---- command ------------------------------------------------------------------------------
@app.command("export")
def export(
    output_format: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv, jsonl or parquet.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or - for stdout (not for parquet).")
    ] = "-",
    since: Annotated[str | None, typer.Option("--since", help="Start: 7d, 12h, a date, an ISO time.")] = None,
    until: UntilOpt = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    project: ProjectOpt = None,
    user: UserOpt = None,
    tenant: TenantOpt = None,
    feature: FeatureOpt = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Write every recorded call (newest first) as CSV, JSON Lines or Parquet, streaming."""
    to_stdout = output == "-"
    if output_format is ExportFormat.PARQUET:
        if to_stdout:
            raise fail(SourceError("parquet needs a file: pass --output FILE.parquet", exit_code=2))
        try:
            load_pyarrow()  # fail before any work is done
        except MissingExtraError as exc:
            raise fail(SourceError(str(exc), exit_code=2)) from None
    try:
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
        with open_source(db, url, api_key) as source, ExitStack() as stack:
            progress = stack.enter_context(progress_bar("exporting", quiet=quiet))
            task = progress.add_task("export", total=source.count(query) if not progress.disable else None)

            def advance() -> None:
                progress.advance(task)

            records = source.calls(query)
            if output_format is ExportFormat.PARQUET:
                n = write_parquet(records, Path(output), advance)
            else:
                stream: TextIO = (
                    sys.stdout if to_stdout else stack.enter_context(open(output, "w", encoding="utf-8", newline=""))
                )
                writer = write_csv if output_format is ExportFormat.CSV else write_jsonl
                n = writer(records, stream, advance)
                stream.flush()
    except SourceError as exc:
        raise fail(exc) from None
    except OSError as exc:
        raise fail(SourceError(f"cannot write {output}: {exc.strerror or exc}")) from None
    if not quiet and not to_stdout:
        typer.echo(f"exported {n:,} calls to {output}", err=True)


__all__ = ["FLAT_COLUMNS", "ExportFormat", "export", "flat_row", "load_pyarrow", "write_csv", "write_jsonl"]
