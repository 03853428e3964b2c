"""How a call's usage maps onto genai-prices usage keys.

TokenUsage fields, `details` entries named as genai-prices usage keys and `Units` become the
keyword arguments of `genai_prices.Usage`; `usage_values` builds exactly that dict, and the
compiled kernels read the same values the same way.
"""

from __future__ import annotations

from decimal import Decimal

from genai_prices.units import UnitRegistry

from tokentrail.core.usage import TokenUsage, Units

# genai-prices usage key -> TokenUsage field. Details never override these named fields.
FIELD_SOURCES: dict[str, str] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "input_audio_tokens": "audio_input_tokens",
    "output_audio_tokens": "audio_output_tokens",
    "output_reasoning_tokens": "reasoning_tokens",
}
# genai-prices usage key -> Units field (a details entry of the same key is the fallback).
# Seconds feed both duration keys: a model prices one or the other (or both, decomposed).
UNIT_SOURCES: dict[str, str] = {
    "input_document_pages": "pages",
    "input_characters": "characters",
    "audio_seconds": "seconds",
    "input_audio_seconds": "seconds",
    "web_searches": "searches",
}
# tokentrail's own unit for per-image prices (genai-prices has pixels, not image counts).
IMAGES = "images"
REQUESTS = "requests"


def as_count(value: object) -> int | Decimal:
    # Float seconds go through their shortest repr, as genai-prices converts them.
    return Decimal(repr(value)) if isinstance(value, float) else value  # type: ignore[return-value]


def read_value(usage: TokenUsage, units: Units | None, key: str) -> int | Decimal | None:
    """One genai-prices usage value of a call, None when not reported."""
    field = FIELD_SOURCES.get(key)
    if field is not None:
        return getattr(usage, field)  # type: ignore[no-any-return]
    unit_field = UNIT_SOURCES.get(key)
    if unit_field is not None and units is not None:
        value = getattr(units, unit_field)
        if value is not None:
            return as_count(value)
    if key == IMAGES:
        return units.images if units is not None else None
    if key == REQUESTS:
        return units.requests if units is not None and units.requests is not None else 1
    return usage.details.get(key) if usage.details else None


def usage_values(usage: TokenUsage, units: Units | None, registry: UnitRegistry) -> dict[str, int | Decimal]:
    """The call as genai-prices usage: `genai_prices.Usage(**usage_values(...))` prices the same.

    Every registered usage key that the call reports is included; unknown details are ignored.
    """
    out: dict[str, int | Decimal] = {}
    keys = set(FIELD_SOURCES) | set(UNIT_SOURCES) | set(usage.details or ())
    for key in keys:
        if key in registry.units and key != REQUESTS:
            value = read_value(usage, units, key)
            if value is not None:
                out[key] = value
    return out


__all__ = ["FIELD_SOURCES", "IMAGES", "REQUESTS", "UNIT_SOURCES", "as_count", "read_value", "usage_values"]
