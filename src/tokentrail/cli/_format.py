"""Formatting shared by the usage commands: exact money strings, counts, and the console."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# Wide enough for model ids when output is piped (Rich assumes 80 columns then).
console = Console(width=None if Console().is_terminal else 160, highlight=False)


def usd(value: Decimal | None) -> str:
    """An exact decimal string of USD for CSV and JSON ("0" for zero, no exponent)."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def money(text: str | Decimal | None) -> str:
    """USD for people: `$1,234.56`, small amounts to six decimals, never rounded to $0."""
    if text is None or text == "":
        return "-"
    value = Decimal(text)
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.2f}"
    shown = f"{value:,.6f}".rstrip("0").rstrip(".")
    return f"${shown}" if Decimal(shown.replace(",", "")) else f"<${Decimal('0.000001')}"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def progress_bar(label: str, *, quiet: bool = False) -> Progress:
    """A progress bar on stderr, shown only when stderr is a terminal (never in pipes or tests)."""
    err = Console(stderr=True)
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=True,
    )


__all__ = ["console", "count", "money", "ms", "progress_bar", "usd"]
