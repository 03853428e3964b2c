"""`tokentrail price` (cost of a hypothetical call) and `tokentrail prices search` (catalog look-up)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tokentrail.cli.app import app
from tokentrail.core import CostBreakdown, TokenUsage, ValidationError
from tokentrail.pricing import PriceEngine, calculate_cost, search_prices

prices_app = typer.Typer(no_args_is_help=True, help="Look up the price catalog.")
app.add_typer(prices_app, name="prices")

# Wide enough for model ids when output is piped (Rich assumes 80 columns then).
console = Console(width=None if Console().is_terminal else 160)


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a date (YYYY-MM-DD) or ISO timestamp", param_hint="--at"
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.6f}".rstrip("0").rstrip(".") if value else "$0"


@app.command("price")
def price(
    model: Annotated[str, typer.Argument(help="Model name as the provider spells it (or a deployment alias).")],
    provider: Annotated[str, typer.Option("--provider", "-p", help="Provider, e.g. openai, anthropic, gemini.")],
    input_tokens: Annotated[
        int, typer.Option("--input", help="All input tokens, cache reads and writes included.")
    ] = 0,
    output_tokens: Annotated[int, typer.Option("--output", help="All output tokens, reasoning included.")] = 0,
    cache_read: Annotated[int | None, typer.Option("--cache-read", help="Input tokens read from cache.")] = None,
    cache_write: Annotated[int | None, typer.Option("--cache-write", help="Input tokens written to cache.")] = None,
    reasoning: Annotated[int | None, typer.Option("--reasoning", help="Output tokens spent reasoning.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Price as of this date (YYYY-MM-DD or ISO time).")] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="Service tier: flex, priority, batch, ...")] = None,
    prices_file: Annotated[str | None, typer.Option("--prices", help="TOML price overrides file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Cost of a hypothetical call, split into uncached input, cache read, cache write and output."""
    try:
        usage = TokenUsage.build(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
        )
        when = _parse_at(at)
        if prices_file:
            cost = PriceEngine(overrides=prices_file).calculate_cost(provider, model, usage, at=when, service_tier=tier)
        else:
            cost = calculate_cost(provider, model, usage, at=when, service_tier=tier)
    except ValidationError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"provider": provider, "model": model, "usage": usage.to_dict(), **cost.to_dict()}))
        return
    _print_breakdown(provider, model, usage, cost)
    if cost.total_cost is None:
        raise typer.Exit(1)


def _print_breakdown(provider: str, model: str, usage: TokenUsage, cost: CostBreakdown) -> None:
    table = Table(title=f"{provider} / {model}", show_header=True, header_style="bold")
    table.add_column("bucket")
    table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    rows: list[tuple[str, Any, Decimal | None]] = [
        ("uncached input", usage.uncached_input_tokens, cost.input_cost),
        ("cache read", usage.cache_read_tokens, cost.cache_read_cost),
        ("cache write", usage.cache_write_tokens, cost.cache_write_cost),
        ("output", usage.output_tokens, cost.output_cost),
    ]
    for label, tokens, amount in rows:
        if tokens is None and not amount:
            table.add_row(label, "-", "-")
        else:
            table.add_row(label, f"{tokens or 0:,}", money(amount))
    if cost.other_cost:
        table.add_row("other units", "", money(cost.other_cost))
    table.add_row("[bold]total[/bold]", f"{usage.total_tokens or 0:,}", f"[bold]{money(cost.total_cost)}[/bold]")
    console.print(table)
    details = [f"status: {cost.pricing_status.value}"]
    if cost.priced_model:
        details.append(f"priced as: {cost.priced_model} ({cost.price_source})")
    if cost.input_price_per_1k is not None:
        details.append(f"input ${cost.input_price_per_1k}/1k, output ${cost.output_price_per_1k}/1k")
    if cost.price_version:
        details.append(f"prices: {cost.price_version}")
    if cost.reason:
        details.append(f"reason: {cost.reason}")
    console.print("  ".join(details))


@prices_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="Part of a model id or name.")],
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="Only this provider.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 50,
) -> None:
    """List catalog models matching TEXT with their current prices per million tokens."""
    matches = search_prices(text, provider=provider)[:limit]
    if as_json:
        typer.echo(json.dumps([m.to_dict() for m in matches]))
        return
    if not matches:
        console.print(f"no model matches {text!r}")
        raise typer.Exit(1)
    table = Table(title=f"models matching {text!r} (USD per million tokens)", header_style="bold")
    for column in ("provider", "model", "input", "cached input", "cache write", "output", "notes"):
        table.add_column(
            column, justify="right" if column in ("input", "cached input", "cache write", "output") else "left"
        )
    for m in matches:
        table.add_row(
            m.provider,
            m.model,
            _mtok(m.input_mtok),
            _mtok(m.cache_read_mtok),
            _mtok(m.cache_write_mtok),
            _mtok(m.output_mtok),
            m.notes or "",
        )
    console.print(table)


def _mtok(value: Decimal | None) -> str:
    return "-" if value is None else f"${value}"
