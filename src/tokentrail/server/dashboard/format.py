"""How the dashboard writes numbers. Money is exact: the decimal string the API gives (or a
Decimal) with thousands separators added, every digit kept — never a float."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

DASH = "—"


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def plain_decimal(value: Decimal) -> str:
    """Positional notation, every digit kept, no exponent and no trailing zeros."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def group_thousands(digits: str) -> str:
    sign = "-" if digits.startswith("-") else ""
    whole, dot, frac = digits.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}{dot}{frac}"


def usd(value: Any) -> str:
    """`$1,234.000125` exactly; `—` when there is no amount."""
    amount = to_decimal(value)
    if amount is None:
        return DASH
    text = group_thousands(plain_decimal(amount))
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def count(value: Any) -> str:
    if value is None:
        return DASH
    return f"{int(value):,}"


def duration_ms(value: Any) -> str:
    if value is None:
        return DASH
    ms = float(value)
    if ms < 1:
        return "<1 ms"
    if ms < 1000:
        return f"{ms:,.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:,.2f} s"
    return f"{ms / 60_000:,.1f} min"


def percent(numerator: Any, denominator: Any) -> str:
    if not denominator:
        return DASH
    share = 100 * Decimal(int(numerator)) / Decimal(int(denominator))
    if 0 < share < Decimal("0.1"):
        return "<0.1%"
    return f"{share:.1f}%"


def percent_of(part: Any, whole: Any) -> str:
    """The share of an amount (decimal strings) in a total, as a percentage."""
    numerator, denominator = to_decimal(part), to_decimal(whole)
    if numerator is None or not denominator:
        return DASH
    share = 100 * numerator / denominator
    if 0 < share < Decimal("0.1"):
        return "<0.1%"
    return f"{share:.1f}%"


def timestamp(value: Any) -> str:
    """A stored ISO time (or datetime) as `2025-10-15 10:32:05 UTC`."""
    if value is None or value == "":
        return DASH
    moment = value if isinstance(value, datetime) else parse_iso(str(value))
    if moment is None:
        return str(value)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return f"{text} UTC"


def short_time(value: Any) -> str:
    """A stored ISO time as `2025-10-15 10:32:05` (tables say UTC in their header)."""
    moment = parse_iso(str(value)) if value else None
    return DASH if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_iso(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a `Z`, as the API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def value(item: Any) -> str:
    """Any record value as text: booleans as yes/no, structures as compact JSON."""
    if item is None:
        return DASH
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, dict | list):
        return json.dumps(item, ensure_ascii=False, sort_keys=True)
    return str(item)


def call_duration_ms(record: dict[str, Any]) -> float | None:
    """A record's duration: the measured one, else completed_at - started_at."""
    measured = (record.get("performance_metrics") or {}).get("total_duration_ms")
    if measured is not None:
        return float(measured)
    started, completed = parse_iso(str(record.get("started_at", ""))), parse_iso(str(record.get("completed_at", "")))
    if started is None or completed is None:
        return None
    return (completed - started).total_seconds() * 1000


def pretty_json(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, indent=2, sort_keys=True)


FILTERS = {
    "usd": usd,
    "count": count,
    "duration_ms": duration_ms,
    "timestamp": timestamp,
    "short_time": short_time,
    "value": value,
    "pretty_json": pretty_json,
}

__all__ = [
    "FILTERS",
    "call_duration_ms",
    "count",
    "duration_ms",
    "iso",
    "parse_iso",
    "percent",
    "percent_of",
    "plain_decimal",
    "pretty_json",
    "short_time",
    "timestamp",
    "to_decimal",
    "usd",
    "value",
]
