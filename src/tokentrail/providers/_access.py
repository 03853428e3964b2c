"""Reading provider responses that come as SDK objects, parsed JSON or anything in between.

Extraction must never raise on malformed input: these helpers return `None` for anything
missing or of the wrong shape, and only well-formed counts come out of `count`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def get(obj: Any, *path: str) -> Any:
    """Follow `path` through mappings (by key) and objects (by attribute); None if any step is missing."""
    for key in path:
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            obj = obj.get(key)
        else:
            try:
                obj = getattr(obj, key, None)
            except Exception:  # a broken property on a third-party object
                return None
    return obj


def count(value: Any) -> int | None:
    """A token count if `value` is a non-negative integer (or an integral float); else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def first_count(obj: Any, *names: str) -> int | None:
    """The first of several alternative field names that holds a count."""
    for name in names:
        value = count(get(obj, name))
        if value is not None:
            return value
    return None
