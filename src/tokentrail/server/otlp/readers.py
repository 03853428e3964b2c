"""Reading typed values out of span attributes.

Token counts and costs are strict: a value that is not a count (negative, fractional, text
that is not a number) raises ValidationError naming the attribute, because a wrong count
must never be priced. Everything else is lenient: a malformed temperature or finish reason is
dropped rather than costing the record of a call that really happened.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tokentrail.core import ValidationError

Attrs = Mapping[str, Any]
_DIGITS = re.compile(r"[0-9]+")


def first(attrs: Attrs, keys: Iterable[str]) -> tuple[str, Any] | None:
    """The first of `keys` present with a value, as (key, value)."""
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return key, value
    return None


def text(attrs: Attrs, keys: Iterable[str]) -> str | None:
    """The first non-empty string among `keys`."""
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def ident(attrs: Attrs, keys: Iterable[str]) -> str | None:
    """An identifier (user, session): a non-empty string, or an integer written as one."""
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value
    return None


def count(attrs: Attrs, keys: Iterable[str]) -> int | None:
    """A token count: an integer, an integral double or a string of digits; else ValidationError."""
    found = first(attrs, keys)
    if found is None:
        return None
    key, value = found
    if isinstance(value, bool):
        raise ValidationError(f"attributes.{key}", "must be a token count, got a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise ValidationError(f"attributes.{key}", f"must be a non-negative integer token count, got {value!r}")
    if value < 0:
        raise ValidationError(f"attributes.{key}", f"must not be negative, got {value}")
    return value


def amount(attrs: Attrs, keys: Iterable[str]) -> Decimal | None:
    """A money amount in USD (a number or a decimal string); else ValidationError."""
    found = first(attrs, keys)
    if found is None:
        return None
    key, value = found
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        result = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"attributes.{key}", f"must be an amount of USD, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise ValidationError(f"attributes.{key}", f"must be a finite non-negative amount, got {value!r}")
    return result


def number(value: Any) -> float | int | None:
    """A finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def whole(value: Any) -> int | None:
    """A non-negative integer (an integral double too), else None."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def strings(value: Any) -> list[str] | None:
    """A list of strings from a string array or a single string, else None."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_value(value: Any) -> Any:
    """JSON text parsed (without NaN or Infinity), or the value itself when it is not JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return value


def json_object(value: Any) -> dict[str, Any] | None:
    """A JSON object (given as text or as a key-value list), else None."""
    parsed = json_value(value)
    return parsed if isinstance(parsed, dict) else None


__all__ = [
    "Attrs",
    "amount",
    "count",
    "first",
    "ident",
    "json_object",
    "json_value",
    "number",
    "strings",
    "text",
    "whole",
]
