"""Token usage in the one inclusive form tokentrail stores (SPEC §1, token accounting).

`input_tokens` counts all billed input, cache reads and writes included; `output_tokens`
counts all output, reasoning included. The cache counts are subsets of input, reasoning a
subset of output. Providers' own conventions are converted once, at extraction; a usage
that breaks an invariant is rejected here, so nothing downstream prices a wrong number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from tokentrail.core.errors import ValidationError
from tokentrail.core.fields import JsonSection, compile_to_json, json_text

_DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]*$")

TOKEN_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
)

# subset -> the count it must not exceed
_SUBSETS: tuple[tuple[str, str], ...] = (
    ("cache_read_tokens", "input_tokens"),
    ("cache_write_tokens", "input_tokens"),
    ("audio_input_tokens", "input_tokens"),
    ("reasoning_tokens", "output_tokens"),
    ("audio_output_tokens", "output_tokens"),
)

# Validation runs for every provider-reported usage, so the counts are read in one C call
# and the subset checks address them by position.
_READ_COUNTS = attrgetter(*TOKEN_FIELDS)
_SUBSET_POSITIONS: tuple[tuple[int, int, str, str], ...] = tuple(
    (TOKEN_FIELDS.index(sub), TOKEN_FIELDS.index(total), sub, total) for sub, total in _SUBSETS
)
_INPUT = TOKEN_FIELDS.index("input_tokens")
_CACHE_READ = TOKEN_FIELDS.index("cache_read_tokens")
_CACHE_WRITE = TOKEN_FIELDS.index("cache_write_tokens")


def check_count(field: str, value: object) -> int | None:
    """A token count: a non-negative int or None (unknown). Bools and floats are refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be a non-negative integer, got {type(value).__name__}")
    if value < 0:
        raise ValidationError(field, f"must not be negative, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Normalised, inclusive token counts of one call. `None` means "not reported"."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    audio_input_tokens: int | None = None
    audio_output_tokens: int | None = None
    # Finer counts named as genai-prices usage keys (e.g. `cache_write_1h_tokens`,
    # `input_image_tokens`, `input_tool_tokens`), kept because some prices depend on them.
    details: Mapping[str, int] | None = None
    # Usage billed at another model's rates inside the same call (Anthropic advisor
    # iterations), keyed by that model's name; excluded from the counts above.
    other_models: Mapping[str, TokenUsage] | None = None

    def __post_init__(self) -> None:
        counts = _READ_COUNTS(self)
        for name, value in zip(TOKEN_FIELDS, counts, strict=True):
            # plain non-negative ints pass without a call; anything else gets check_count's verdict
            if value is not None and (type(value) is not int or value < 0):
                check_count(name, value)
        for sub_at, total_at, sub, total in _SUBSET_POSITIONS:
            sub_value = counts[sub_at]
            if not sub_value:
                continue
            total_value = counts[total_at]
            if total_value is None:
                raise ValidationError(sub, f"is {sub_value} but {total} is unknown; the subset needs its total")
            if sub_value > total_value:
                raise ValidationError(sub, f"{sub_value} exceeds {total} {total_value}; it is a subset of it")
        input_tokens = counts[_INPUT]
        cached = (counts[_CACHE_READ] or 0) + (counts[_CACHE_WRITE] or 0)
        if cached and input_tokens is not None and cached > input_tokens:
            raise ValidationError(
                "cache_read_tokens",
                f"cache reads + writes ({cached}) exceed input_tokens {input_tokens}",
            )
        if self.details is not None:
            if not isinstance(self.details, Mapping):
                raise ValidationError("details", "must be a mapping of usage key to count")
            for key, value in self.details.items():
                if not isinstance(key, str) or not _DETAIL_KEY.match(key):
                    raise ValidationError("details", f"key {key!r} is not a lower_snake_case usage key")
                check_count(f"details.{key}", value)
        if self.other_models is not None:
            if not isinstance(self.other_models, Mapping):
                raise ValidationError("other_models", "must map a model name to its TokenUsage")
            for model, usage in self.other_models.items():
                if not isinstance(model, str) or not model:
                    raise ValidationError("other_models", "keys must be non-empty model names")
                if not isinstance(usage, TokenUsage):
                    raise ValidationError(f"other_models.{model}", "must be a TokenUsage")

    # ---- convenience -------------------------------------------------------------------
    @property
    def is_empty(self) -> bool:
        """True when the provider reported nothing at all."""
        for value in _READ_COUNTS(self):
            if value is not None:
                return False
        return not self.details

    @property
    def uncached_input_tokens(self) -> int | None:
        if self.input_tokens is None:
            return None
        return self.input_tokens - (self.cache_read_tokens or 0) - (self.cache_write_tokens or 0)

    @classmethod
    def build(
        cls,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        total_tokens: int | None = None,
        **kwargs: Any,
    ) -> TokenUsage:
        """Construct, filling `total_tokens` from input + output when both are known."""
        if total_tokens is None and input_tokens is not None and output_tokens is not None:
            total_tokens = input_tokens + output_tokens
        return cls(input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total_tokens, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in TOKEN_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.details:
            out["details"] = dict(self.details)
        if self.other_models:
            out["other_models"] = {model: usage.to_dict() for model, usage in self.other_models.items()}
        return out

    def to_json(self) -> str:
        """`to_dict()` as compact JSON text."""
        if self.details or self.other_models:
            return json_text(self.to_dict())
        return _counts_json(self)

    @classmethod
    def from_dict(cls, data: object, *, path: str = "token_usage") -> TokenUsage:
        if not isinstance(data, Mapping):
            raise ValidationError(path, f"must be an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValidationError(f"{path}.{key}", "is not a token_usage field")
        kwargs: dict[str, Any] = {}
        for name in TOKEN_FIELDS:
            if name in data:
                kwargs[name] = check_count(f"{path}.{name}", data[name])
        if data.get("details") is not None:
            details = data["details"]
            if not isinstance(details, Mapping):
                raise ValidationError(f"{path}.details", "must be an object")
            kwargs["details"] = dict(details)
        if data.get("other_models") is not None:
            other = data["other_models"]
            if not isinstance(other, Mapping):
                raise ValidationError(f"{path}.other_models", "must be an object")
            kwargs["other_models"] = {
                str(model): cls.from_dict(usage, path=f"{path}.other_models.{model}") for model, usage in other.items()
            }
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            raise exc.prefixed(path) from None

    def __add__(self, other: object) -> TokenUsage:
        """Sum two usages (e.g. iterations of one request); unknown + known = known."""
        if not isinstance(other, TokenUsage):
            return NotImplemented

        def add(a: int | None, b: int | None) -> int | None:
            if a is None:
                return b
            if b is None:
                return a
            return a + b

        details: dict[str, int] | None = None
        if self.details or other.details:
            details = dict(self.details or {})
            for key, value in (other.details or {}).items():
                details[key] = details.get(key, 0) + value
        others: dict[str, TokenUsage] | None = None
        if self.other_models or other.other_models:
            others = dict(self.other_models or {})
            for model, usage in (other.other_models or {}).items():
                others[model] = others[model] + usage if model in others else usage
        return TokenUsage(
            **{name: add(getattr(self, name), getattr(other, name)) for name in TOKEN_FIELDS},
            details=details,
            other_models=others,
        )


@dataclass(frozen=True, slots=True)
class Units:
    """Non-token billing units of one call (OCR pages, images, seconds, ...)."""

    pages: int | None = None
    images: int | None = None
    characters: int | None = None
    seconds: float | None = None
    requests: int | None = None
    searches: int | None = None

    def __post_init__(self) -> None:
        for name in ("pages", "images", "characters", "requests", "searches"):
            check_count(name, getattr(self, name))
        seconds = self.seconds
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0):
            raise ValidationError("seconds", "must be a non-negative number")

    @property
    def is_empty(self) -> bool:
        return all(value is None for value in _READ_UNITS(self))

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in zip(_UNIT_FIELDS, _READ_UNITS(self), strict=True) if value is not None}

    def to_json(self) -> str:
        """`to_dict()` as compact JSON text."""
        return _units_json(self)

    @classmethod
    def from_dict(cls, data: object, *, path: str = "units") -> Units:
        if not isinstance(data, Mapping):
            raise ValidationError(path, f"must be an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValidationError(f"{path}.{key}", "is not a units field")
        try:
            return cls(**{k: v for k, v in data.items() if v is not None})
        except ValidationError as exc:
            raise exc.prefixed(path) from None


_UNIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Units))
_READ_UNITS = attrgetter(*_UNIT_FIELDS)


def _same(value: Any) -> Any:
    return value  # counts and units go into the JSON form as they are


# how LLMCall's compiled `to_json` writes these inline (see JsonSection)
TOKEN_USAGE_JSON = JsonSection(TokenUsage, _same, names=TOKEN_FIELDS, unless=("details", "other_models"))
UNITS_JSON = JsonSection(Units, _same)
_counts_json = compile_to_json(TokenUsage, {}, _same, names=TOKEN_FIELDS)
_units_json = compile_to_json(Units, {}, _same)
