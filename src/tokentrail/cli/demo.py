"""`tokentrail demo`: a newcomer's first minute — real provider payloads in, exact costs out,
recorded through the SDK into the embedded SQLite default and read back from it."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tokentrail import testing
from tokentrail.cli.app import app
from tokentrail.cli.demo_calls import DEMO_CALLS, DemoCall
from tokentrail.cli.price import console, money
from tokentrail.core import LLMCall
from tokentrail.core.columns import TABLE, from_pico
from tokentrail.providers import extract_usage
from tokentrail.tracking import attribution, configure, current_settings, flush, track_llm_call


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _record(call: DemoCall) -> None:
    """One call as an application would track it: attribution around, usage from the response."""
    with (
        attribution(user_id=call.user, feature=call.feature),
        track_llm_call(provider=call.provider, model=call.model) as tracker,
    ):
        tracker.set_usage(extract_usage(call.body, call.provider, call.api))
        if call.service_tier:
            tracker.set_response_metadata(service_tier=call.service_tier)
        tracker.add_metadata(demo_label=call.label)


def _stored(db: Path, ids: list[str]) -> dict[str, tuple[int | None, str]]:
    """id -> (total_cost in pico-USD, pricing_status), read back from the SQLite file."""
    marks = ",".join("?" * len(ids))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT id, total_cost, pricing_status FROM {TABLE} WHERE id IN ({marks})", ids)
        return {row[0]: (row[1], row[2]) for row in rows}


@app.command("demo")
def demo(
    home: Annotated[str | None, typer.Option("--home", help="Where to keep the SQLite file (TOKENTRAIL_HOME).")] = None,
) -> None:
    """Record a realistic set of calls from six providers and print what they cost and who caused it."""
    configure(home=home) if home else configure()
    db = current_settings().database_path
    with testing.capture() as captured:
        for call in DEMO_CALLS:
            _record(call)
    flush()
    records: list[LLMCall] = list(captured)
    stored = _stored(db, [r.id for r in records])
    _print_calls(records, stored)
    _print_by(records, stored)
    console.print(f"[bold]{len(stored)} of {len(records)} records stored in[/bold] {db}")
    console.print("Try: tokentrail price gpt-4o --provider openai --input 4020 --cache-read 3968 --output 310")


def _print_calls(records: list[LLMCall], stored: dict[str, tuple[int | None, str]]) -> None:
    table = Table(title="tokentrail demo: one record per call, read back from SQLite", header_style="bold")
    for column in ("call", "provider / model", "input", "cache r/w", "output", "reasoning", "cost", "status"):
        table.add_column(
            column, justify="right" if column in ("input", "cache r/w", "output", "reasoning", "cost") else "left"
        )
    for record in records:
        usage = record.token_usage
        pico, status = stored.get(record.id, (None, "not stored"))
        table.add_row(
            str((record.metadata or {}).get("demo_label", "")),
            f"{record.provider} / {record.request_model}",
            _n(usage.input_tokens if usage else None),
            f"{_n(usage.cache_read_tokens if usage else None)}/{_n(usage.cache_write_tokens if usage else None)}",
            _n(usage.output_tokens if usage else None),
            _n(usage.reasoning_tokens if usage else None),
            money(None if pico is None else from_pico(pico)),
            status,
        )
    console.print(table)


def _print_by(records: list[LLMCall], stored: dict[str, tuple[int | None, str]]) -> None:
    by_feature: dict[str, Decimal] = defaultdict(Decimal)
    by_user: dict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        pico = stored.get(record.id, (None, ""))[0]
        if pico is None or record.attribution is None:
            continue
        by_feature[record.attribution.feature or "-"] += from_pico(pico)
        by_user[record.attribution.user_id or "-"] += from_pico(pico)
    table = Table(title="who and what drove the spend", header_style="bold")
    table.add_column("feature")
    table.add_column("cost", justify="right")
    table.add_column("user")
    table.add_column("cost", justify="right")
    features = sorted(by_feature.items(), key=lambda kv: -kv[1])
    users = sorted(by_user.items(), key=lambda kv: -kv[1])
    for i in range(max(len(features), len(users))):
        f = features[i] if i < len(features) else ("", None)
        u = users[i] if i < len(users) else ("", None)
        table.add_row(f[0], money(f[1]) if f[1] is not None else "", u[0], money(u[1]) if u[1] is not None else "")
    console.print(table)
    total = sum(by_feature.values(), Decimal(0))
    console.print(f"[bold]total priced:[/bold] {money(total)}")
