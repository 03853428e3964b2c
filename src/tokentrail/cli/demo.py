"""`tokentrail demo`: a newcomer's first minute — real provider payloads in, exact costs out."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table

from tokentrail.cli.app import app
from tokentrail.cli.demo_calls import DEMO_CALLS, DEMO_DATE
from tokentrail.cli.price import money
from tokentrail.pricing import calculate_cost
from tokentrail.providers import extract_usage

console = Console()


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


@app.command("demo")
def demo() -> None:
    """Price a realistic set of calls from six providers and print the breakdown."""
    table = Table(title=f"tokentrail demo — priced as of {DEMO_DATE:%Y-%m-%d}", header_style="bold", show_lines=False)
    for column, justify in (
        ("call", "left"),
        ("provider / model", "left"),
        ("input", "right"),
        ("cache r/w", "right"),
        ("output", "right"),
        ("reasoning", "right"),
        ("cost", "right"),
        ("status", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    total = Decimal(0)
    unpriced = 0
    for call in DEMO_CALLS:
        usage = extract_usage(call.body, call.provider, call.api)
        cost = calculate_cost(call.provider, call.model, usage, at=call.at or DEMO_DATE, service_tier=call.service_tier)
        if cost.total_cost is None:
            unpriced += 1
        else:
            total += cost.total_cost
        status = cost.pricing_status.value + (f" ({cost.priced_model})" if cost.priced_model else "")
        table.add_row(
            call.label,
            f"{call.provider} / {call.model}",
            _n(usage.input_tokens if usage else None),
            f"{_n(usage.cache_read_tokens if usage else None)}/{_n(usage.cache_write_tokens if usage else None)}",
            _n(usage.output_tokens if usage else None),
            _n(usage.reasoning_tokens if usage else None),
            money(cost.total_cost),
            status,
        )
    console.print(table)
    console.print(
        f"[bold]total priced:[/bold] {money(total)} over {len(DEMO_CALLS) - unpriced} calls; {unpriced} unpriced"
    )
    console.print("Try: tokentrail price gpt-4o --provider openai --input 4020 --cache-read 3968 --output 310")
