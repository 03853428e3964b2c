"""Reading provider responses that come as SDK objects, parsed JSON or anything in between.

Extraction must never raise on malformed input: these helpers return `None` for anything
missing or of the wrong shape, and only well-formed counts come out of `count`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentrail.core.errors import ValidationError


def get(obj: Any, *path: str) -> Any:
    """Follow `path` through mappings (by key) and objects (by attribute); None if any step is missing."""
    for key in path:
        if obj is None:
            return None
        if obj.__class__ is dict or isinstance(obj, Mapping):  # a plain dict skips the ABC check
            obj = obj.get(key)
        else:
            try:
                obj = getattr(obj, key, None)
            except Exception:  # a broken property on a third-party object
                return None
    return obj


def count(value: Any, field: str = "usage") -> int | None:
    """A token count if `value` is an integer (or an integral float); None if absent or not a number.

    A negative count is reported, but breaks the accounting invariants (SPEC §1), so it is
    rejected with a `ValidationError` naming `field` rather than silently dropped.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValidationError(field, f"must not be negative, got {value}")
        return value
    return None


def first_count(obj: Any, *names: str) -> int | None:
    """The first of several alternative field names that holds a count."""
    for name in names:
        value = count(get(obj, name), name)
        if value is not None:
            return value
    return None


# ---- helpers added for the Anthropic / Gemini / Bedrock adapters ---------------------------
def reported(value: Any) -> int | None:
    """An integer count as reported, negatives kept so the caller can reject them; else None.

    `count` turns a negative into "not reported"; adapters that must reject a negative count
    (SPEC §1: it breaks an invariant) read with this and check with `non_negative`.
    """
    if value is None or value.__class__ is bool:
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def first_reported(obj: Any, *names: str) -> int | None:
    """`reported` over several alternative field names (e.g. snake_case and camelCase)."""
    for name in names:
        value = reported(get(obj, name))
        if value is not None:
            return value
    return None


def non_negative(field: str, value: int | None) -> int | None:
    """`value` unchanged, or a `ValidationError` naming `field` when it is negative."""
    if value is not None and value < 0:
        raise ValidationError(field, f"must not be negative, got {value}")
    return value


def header_value(headers: Any, name: str) -> Any:
    """A header from a mapping whose key case is unknown (boto3 lower-cases, recordings do not)."""
    if not isinstance(headers, Mapping):
        return None
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = candidate
                break
    if isinstance(value, list | tuple):  # recordings keep each header as a list of values
        value = value[0] if len(value) == 1 else None
    return value


def header_count(headers: Any, name: str) -> int | None:
    """An integer header (`x-amzn-bedrock-input-token-count: 14`), negatives kept; else None."""
    value = header_value(headers, name)
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in ("-", "+") else text
        if digits.isascii() and digits.isdigit() and len(digits) <= 30:
            return int(text)
        return None
    return reported(value)
