"""JSON in and out of the hot ingest path: orjson when it is installed (about 4x faster for
record bodies), the standard library otherwise. Both give the same values."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from tokentrail.core.columns import record_json

orjson: ModuleType | None
try:  # optional: faster, but the server works without it
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError for invalid JSON (the standard library's message)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # integers over 64 bits, NaN, or bad JSON: the standard parser decides
    try:
        return json.loads(data)
    except RecursionError:  # nesting deeper than the interpreter's stack: bad input, not a crash
        raise ValueError("JSON is nested too deeply") from None


def dumps(value: Any) -> str:
    """Compact JSON text (as `core.columns.record_json` writes it)."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            pass  # integers over 64 bits
    return record_json(value)


__all__ = ["dumps", "loads"]
