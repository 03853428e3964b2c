"""Typed field conversion shared by the record sections: one place that turns JSON values
into Python values (and back) and names the field when a value is wrong."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from tokentrail.core.errors import ValidationError

T = TypeVar("T")


def as_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValidationError(field, f"must not be negative, got {value}")
    return value


def as_number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValidationError(field, "must be finite")
    return value


def as_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    return value


def as_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"must be true or false, got {type(value).__name__}")
    return value


def as_time(field: str, value: object) -> datetime:
    """An aware UTC datetime, from a datetime or an ISO 8601 string."""
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, f"{value!r} is not an ISO 8601 timestamp") from None
    else:
        raise ValidationError(field, f"must be an ISO 8601 timestamp, got {type(value).__name__}")
    if result.tzinfo is None:
        # Naive times are taken as UTC: the SDK only ever produces UTC.
        return result.replace(tzinfo=UTC)
    return result.astimezone(UTC)


def as_str_list(field: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError(field, f"must be a list of strings, got {type(value).__name__}")
    return [as_str(f"{field}[{i}]", item) for i, item in enumerate(value)]


def as_dict(field: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be an object, got {type(value).__name__}")
    return dict(value)


def as_any(field: str, value: object) -> Any:
    return value


Converter = Callable[[str, object], Any]


def time_to_json(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def value_to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return time_to_json(value)
    return value


def section_to_dict(section: Any) -> dict[str, Any]:
    """A flat section dataclass as JSON, absent values omitted."""
    out: dict[str, Any] = {}
    for f in fields(section):
        value = getattr(section, f.name)
        if value is not None:
            out[f.name] = value_to_json(value)
    return out


def section_from_dict(cls: type[T], kinds: Mapping[str, Converter], data: object, path: str) -> T:
    """Build a flat section from JSON, checking every field with its converter."""
    if not isinstance(data, Mapping):
        raise ValidationError(path, f"must be an object, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        convert = kinds.get(key)
        if convert is None:
            raise ValidationError(f"{path}.{key}", f"is not a {path} field")
        if value is not None:
            kwargs[key] = convert(f"{path}.{key}", value)
    try:
        return cls(**kwargs)
    except ValidationError as exc:
        raise exc.prefixed(path) from None
