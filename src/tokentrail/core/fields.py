"""Typed field conversion shared by the record sections: one place that turns JSON values
into Python values (and back) and names the field when a value is wrong."""

from __future__ import annotations

import json
import json.encoder as json_encoder
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dc_field
from datetime import UTC, datetime
from decimal import Decimal
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
    if value.tzinfo is UTC and type(value) is datetime:
        # the common case (every time the SDK makes): isoformat ends in "+00:00" already
        return value.isoformat()[:-6] + "Z"
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


OMIT: Any = object()
"""Returned by a compiled serialiser's fallback to leave a value out (an empty section)."""

# types whose values go into the JSON form unchanged under every class's conversion rule
_PASSTHROUGH: frozenset[type] = frozenset({str, int, float, bool, dict, list})

# The record's JSON text: compact, UTF-8 kept, anything JSON cannot hold written through str.
json_text: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
_encode_str = json_encoder.encode_basestring  # what json_text uses for a str (C-accelerated)


def compile_to_dict(
    cls: type,
    kinds: Mapping[str, str],
    fallback: Callable[[Any], Any],
    *,
    enum_types: tuple[type, ...] = (),
    section_types: tuple[type, ...] = (),
) -> Callable[[Any], dict[str, Any]]:
    """A `to_dict` for `cls` compiled to straight-line code, as `dataclasses` builds `__init__`.

    Records are serialised once each on the background worker, where every microsecond is
    shared with the host through the GIL; the generic loop (`dataclasses.fields`, a chain of
    isinstance checks per value) costs three times more. Per field, in declaration order:
    `None` is left out; a value of the type its kind expects takes the inline fast path
    (`value`: str/int/float/bool/dict/list kept; `enum`: an exact `enum_types` member gives
    its value; `time`: a UTC datetime gives ISO 8601 with `Z`; `decimal`: a Decimal gives its
    string; `section`: an exact `section_types` instance gives its `to_dict()`, left out when
    empty). Any other value goes to `fallback`, the class's general rule, which may return
    `OMIT`. Each fast path returns what `fallback` would, so the result never depends on it.
    """
    lines = ["def to_dict(self):", "    out = {}"]
    for name in _field_names(cls):
        kind = kinds.get(name, "value")
        lines += [f"    v = self.{name}", "    if v is not None:"]
        if kind == "section":
            lines += [
                "        if type(v) in _SECTIONS:",
                "            d = v.to_dict()",
                "            if d:",
                f"                out[{name!r}] = d",
            ]
        else:
            test, expr = {
                "value": ("type(v) in _PASS", "v"),
                "enum": ("type(v) in _ENUMS", "v._value_"),
                "time": ("type(v) is _datetime and v.tzinfo is _UTC", "v.isoformat()[:-6] + 'Z'"),
                "decimal": ("type(v) is _Decimal", "str(v)"),
            }[kind]
            lines += [f"        if {test}:", f"            out[{name!r}] = {expr}"]
        lines += [
            "        else:",
            "            v = _fallback(v)",
            "            if v is not _OMIT:",
            f"                out[{name!r}] = v",
        ]
    lines.append("    return out")
    names = {"_fallback": fallback, "_ENUMS": frozenset(enum_types), "_SECTIONS": frozenset(section_types)}
    return _compile(cls, "to_dict", lines, names)


@dataclass(frozen=True)
class JsonSection:
    """How `compile_to_json` writes a section field inline (instead of calling its `to_json`).

    `cls`: the section's class (only exact instances are inlined); `kinds` / `fallback` /
    `names` / `enum_types`: as for the section's own fields; `unless`: attributes that, when
    truthy, send the section to its own `to_json()` (TokenUsage's nested parts); `remember`:
    keep the last section object's text and reuse it while the same (frozen) object comes
    again, as the attribution of every record in an `attribution()` block does.
    """

    cls: type
    fallback: Callable[[Any], Any]
    kinds: Mapping[str, str] = dc_field(default_factory=dict)
    names: tuple[str, ...] | None = None
    enum_types: tuple[type, ...] = ()
    unless: tuple[str, ...] = ()
    remember: bool = False


def compile_to_json(
    cls: type,
    kinds: Mapping[str, str],
    fallback: Callable[[Any], Any],
    *,
    names: tuple[str, ...] | None = None,
    enum_types: tuple[type, ...] = (),
    section_types: tuple[type, ...] = (),
    inline: Mapping[str, JsonSection] | None = None,
) -> Callable[[Any], str]:
    """`json_text(obj.to_dict())` for `cls`, written straight from the fields.

    Building the dict and then encoding it costs about twice what the values themselves do
    (the C encoder spends ~0.1 µs per item); this emits each field's JSON fragment directly,
    in the same order and spelling. Kinds and `fallback` are those of `compile_to_dict`, with
    the same fast paths; `names` limits it to some fields (default: all). A value outside
    the fast paths gets `json_text(fallback(value))`, which is by definition what encoding
    the dict would have written for it. Section fields are written inline when `inline`
    describes them, else with the section's own `to_json()`. Times format through a cache of
    the last second's text; Decimals that repeat as the same object (prices, zeros) reuse
    their last text.
    """
    writer = _JsonWriter(fallback, enum_types, section_types)
    lines = ["def to_json(self):", "    parts = []", "    add = parts.append"]
    writer.fields(lines, 1, "self", "v", "add", names or _field_names(cls), kinds, "_fallback", inline or {})
    lines.append("    return '{' + ','.join(parts) + '}'")
    return _compile(cls, "to_json", lines, writer.namespace)


class _JsonWriter:
    """Source lines of a compiled `to_json`, and the names they use."""

    def __init__(self, fallback: Callable[[Any], Any], enum_types: tuple[type, ...], section_types: tuple[type, ...]):
        self.namespace: dict[str, Any] = {
            "_fallback": fallback,
            "_ENUMS": frozenset(enum_types),
            "_SECTIONS": frozenset(section_types),
            "_decimals": [],  # per decimal field: (last Decimal, its JSON text)
            "_remembered": [],  # per remembered section field: (last section, its JSON text)
        }

    def _slot(self, table: str) -> int:
        cells: list[tuple[Any, str]] = self.namespace[table]
        cells.append((None, ""))
        return len(cells) - 1

    def fields(
        self,
        lines: list[str],
        depth: int,
        obj: str,
        var: str,
        add: str,
        names: tuple[str, ...],
        kinds: Mapping[str, str],
        fallback: str,
        inline: Mapping[str, JsonSection],
    ) -> None:
        pad = "    " * depth
        for name in names:
            kind = kinds.get(name, "value")
            key = repr(_encode_str(name) + ":")
            lines += [f"{pad}{var} = {obj}.{name}", f"{pad}if {var} is not None:"]
            body = pad + "    "
            if kind == "value":
                lines += [
                    f"{body}t = type({var})",
                    f"{body}if t is str:",
                    f"{body}    {add}({key} + _enc({var}))",
                    f"{body}elif t is int:",  # f-strings format an exact int / float as repr does
                    f"{body}    {add}(f{(_encode_str(name) + ':{' + var + '}')!r})",
                    f"{body}elif t is float and {var} - {var} == 0.0:",  # finite: json spells nan/inf its way
                    f"{body}    {add}(f{(_encode_str(name) + ':{' + var + '!r}')!r})",
                    f"{body}elif t is bool:",
                    f"{body}    {add}({key} + ('true' if {var} else 'false'))",
                    f"{body}elif t is dict:",
                    f"{body}    {add}({key} + _dict_json({var}))",
                ]
            elif kind == "enum":
                lines += [f"{body}if type({var}) in _ENUMS:", f"{body}    {add}({key} + _enc({var}._value_))"]
            elif kind == "time":
                lines += [
                    f"{body}if type({var}) is _datetime and {var}.tzinfo is _UTC:",
                    f"{body}    {add}({key} + _utc_json({var}))",
                ]
            elif kind == "decimal":
                cell = self._slot("_decimals")
                lines += [
                    f"{body}if type({var}) is _Decimal:",
                    f"{body}    c = _decimals[{cell}]",
                    f"{body}    if c[0] is not {var}:",
                    # a Decimal's str has only digits, sign, '.' and 'E': nothing to escape
                    f"{body}        c = _decimals[{cell}] = ({var}, '\"' + str({var}) + '\"')",
                    f"{body}    {add}({key} + c[1])",
                ]
            elif kind == "section":
                self._section(lines, body, var, add, key, inline.get(name))
            else:
                raise ValueError(f"unknown field kind {kind!r}")
            lines += [
                f"{body}else:",
                f"{body}    {var} = {fallback}({var})",
                f"{body}    if {var} is not _OMIT:",
                f"{body}        {add}({key} + _json_text({var}))",
            ]

    def _section(self, lines: list[str], pad: str, var: str, add: str, key: str, spec: JsonSection | None) -> None:
        if spec is None:
            lines += [
                f"{pad}if type({var}) in _SECTIONS:",
                f"{pad}    s = {var}.to_json()",
                f"{pad}    if s != '{{}}':",
                f"{pad}        {add}({key} + s)",
            ]
            return
        tag = spec.cls.__name__
        self.namespace[f"_cls_{tag}"] = spec.cls
        self.namespace[f"_fallback_{tag}"] = spec.fallback
        self.namespace["_ENUMS"] = self.namespace["_ENUMS"] | frozenset(spec.enum_types)
        test = f"type({var}) is _cls_{tag}" + "".join(f" and not {var}.{attr}" for attr in spec.unless)
        lines.append(f"{pad}if {test}:")
        body = pad + "    "
        if spec.remember:
            cell = self._slot("_remembered")
            lines += [f"{body}c = _remembered[{cell}]", f"{body}if c[0] is not {var}:"]
            body += "    "
        lines += [f"{body}sub = []", f"{body}sub_add = sub.append"]
        self.fields(
            lines, len(body) // 4, var, "u", "sub_add", spec.names or _field_names(spec.cls), spec.kinds,
            f"_fallback_{tag}", {},
        )  # fmt: skip
        lines.append(f"{body}s = '{{' + ','.join(sub) + '}}' if sub else ''")
        if spec.remember:
            lines += [f"{body}c = _remembered[{cell}] = ({var}, s)", f"{pad}    s = c[1]"]
        lines += [
            f"{pad}    if s:",
            f"{pad}        {add}({key} + s)",
            f"{pad}elif type({var}) in _SECTIONS:",
            f"{pad}    s = {var}.to_json()",
            f"{pad}    if s != '{{}}':",
            f"{pad}        {add}({key} + s)",
        ]


_SECONDS: dict[tuple[int, ...], str] = {}  # (second, minute, hour, day, month, year) -> ISO text


def _utc_json(value: datetime) -> str:
    """JSON of `time_to_json(value)` for a UTC datetime (ISO 8601 with `Z`). The date-and-time
    part is kept per second: a record's times (start, end, rate-limit resets) share a few."""
    key = (value.second, value.minute, value.hour, value.day, value.month, value.year)
    prefix = _SECONDS.get(key)
    if prefix is None:
        if len(_SECONDS) >= 64:
            _SECONDS.clear()
        prefix = _SECONDS[key] = value.isoformat()[:19]
    micros = value.microsecond
    return f'"{prefix}.{micros:06d}Z"' if micros else f'"{prefix}Z"'


def _dict_json(mapping: dict[Any, Any]) -> str:
    """`json_text(mapping)`, written here when it is flat (str keys; str, int, bool or None
    values: metadata and provider_specific usually are), which skips building an encoder."""
    parts: list[str] = []
    add = parts.append
    for key, value in mapping.items():
        if type(key) is not str:
            return json_text(mapping)
        kind = type(value)
        if kind is str:
            add(_encode_str(key) + ":" + _encode_str(value))
        elif kind is int:
            add(f"{_encode_str(key)}:{value}")
        elif kind is bool:
            add(_encode_str(key) + (":true" if value else ":false"))
        elif value is None:
            add(_encode_str(key) + ":null")
        else:
            return json_text(mapping)
    return "{" + ",".join(parts) + "}"


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _compile(cls: type, name: str, lines: list[str], names: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {
        "_PASS": _PASSTHROUGH,
        "_ENUMS": frozenset(),
        "_SECTIONS": frozenset(),
        "_datetime": datetime,
        "_UTC": UTC,
        "_Decimal": Decimal,
        "_OMIT": OMIT,
        "_enc": _encode_str,
        "_dict_json": _dict_json,
        "_json_text": json_text,
        "_utc_json": _utc_json,
        **names,
    }
    exec("\n".join(lines), namespace)  # the source is built above from field names only
    function = namespace[name]
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    return function


def slot_twin(cls: type) -> type:
    """A class with exactly `cls`'s slots and bases but plain attribute assignment.

    Trusted constructors fill an instance of it and then set its `__class__` to `cls`:
    a frozen dataclass's `__init__` goes through `object.__setattr__` for every field,
    which costs several times more than the values it stores. CPython allows the class
    switch because the layouts are identical (same bases, same slot names).
    """
    slots = cls.__dict__.get("__slots__")
    if not isinstance(slots, tuple) or "__dict__" in slots or "__weakref__" in slots:
        raise TypeError(f"{cls.__name__} must declare its fields as __slots__")
    return type(f"_{cls.__name__}Slots", cls.__bases__, {"__slots__": slots})


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
