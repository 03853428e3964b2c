"""Picking the record's request parameters out of whatever a provider SDK was called with.

Each provider names the parameters its own way (Anthropic `stop_sequences`, Gemini
`max_output_tokens` / camelCase, Bedrock `maxTokens`); the provider modules give a table from
their spelling to the `RequestParameters` field and this module keeps the values of the right
type. A value of the wrong type is left out rather than failing the record: the SDK (or the
service) is the one to reject it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

_NUMBERS = frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty"})
_COUNTS = frozenset({"top_k", "max_tokens", "n"})


def is_unset(value: Any) -> bool:
    """None, or a Stainless SDK's `NOT_GIVEN` / `omit` sentinel (frameworks pass them explicitly)."""
    return value is None or value.__class__.__name__ in ("NotGiven", "Omit")


def parameter(field: str, value: Any) -> Any:
    """`value` as the `RequestParameters` field `field` takes it, or None when it does not fit."""
    if is_unset(value):
        return None
    if field in _NUMBERS:
        if value.__class__ is bool or not isinstance(value, int | float) or value != value:
            return None
        return value
    if field in _COUNTS:
        if value.__class__ is bool or not isinstance(value, int) or value < 0:
            return None
        return value
    if field == "seed":
        return None if value.__class__ is bool or not isinstance(value, int) else value
    if field == "stop_sequences":
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return list(value)
        return None
    if field == "stream":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) and value else None  # service_tier


def pick(values: Any, names: Mapping[str, str], out: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters `names` (provider spelling -> field) finds in `values` (a mapping or an
    object with attributes, such as a pydantic config); the first spelling found wins."""
    found: dict[str, Any] = {} if out is None else out
    if values is None:
        return found
    is_mapping = isinstance(values, Mapping)
    for key, field in names.items():
        if field in found:
            continue
        raw = values.get(key) if is_mapping else getattr(values, key, None)
        value = parameter(field, raw)
        if value is not None:
            found[field] = value
    return found


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of a small request option (dicts, lists, scalars; enums by value)."""
    if isinstance(value, Enum):  # before the scalars: SDK enums are often str subclasses
        return plain(value.value, depth + 1)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if depth > 6:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items() if not is_unset(v)}
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value]
    dump = getattr(value, "model_dump", None)  # pydantic objects (google-genai configs)
    if callable(dump):
        try:
            return plain(dump(mode="json", exclude_none=True), depth + 1)
        except Exception:
            return str(value)
    return str(value)


__all__ = ["is_unset", "parameter", "pick", "plain"]
