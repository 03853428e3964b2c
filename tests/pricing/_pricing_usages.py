"""Usages that exercise every priced key of a catalog price, for the parity tests.

A usage is built from disjoint "leaf" counts, one per priced unit; each reported count is the
sum of the leaves inside it, so it is consistent by construction (genai-prices' own
decomposition gives the leaves back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from genai_prices import types as gp
from genai_prices.units import UnitDef, UnitRegistry

from tokentrail.core import TokenUsage, Units
from tokentrail.pricing.catalog import price_boundaries
from tokentrail.pricing.price_terms import resolved_prices
from tokentrail.pricing.usage_keys import FIELD_SOURCES, UNIT_SOURCES

# genai-prices provider id -> tokentrail provider name: the providers the parity test covers.
PARITY_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "x-ai": "x_ai",
    "groq": "groq",
}


def priced_units(model_price: gp.ModelPrice, registry: UnitRegistry) -> list[UnitDef]:
    return [unit for unit, _ in resolved_prices(model_price, registry) if unit.usage_key != "requests"]


def tier_start(model_price: gp.ModelPrice) -> int | None:
    starts = [t.start for v in model_price.__dict__.values() if isinstance(v, gp.TieredPrices) for t in v.tiers]
    return max(starts) if starts else None


def build_usage(
    model_price: gp.ModelPrice,
    registry: UnitRegistry,
    leaf_of: Callable[[str], int],
    *,
    above_tier: bool = False,
    reasoning: int | None = None,
) -> tuple[TokenUsage, Units | None]:
    """A usage reporting every priced key of `model_price` with leaf counts `leaf_of(key)`.

    `reasoning` adds reasoning tokens inside output even where they are not priced separately
    (they are then billed as output). `above_tier` puts the prompt above the highest tier.
    """
    units = priced_units(model_price, registry)
    keys = {u.usage_key for u in units}
    leaves = {u.usage_key: leaf_of(u.usage_key) for u in units}
    if "audio_seconds" in keys and "input_audio_seconds" in keys:
        leaves["audio_seconds"] = 0  # one `seconds` value feeds both keys
    start = tier_start(model_price)
    if above_tier and start is not None and "input_tokens" in leaves:
        leaves["input_tokens"] += start + 1
    raw = {
        u.usage_key: sum(leaves[d.usage_key] for d in units if u.dimensions.items() <= d.dimensions.items())
        for u in units
    }
    fields: dict[str, int] = {}
    details: dict[str, int] = {}
    unit_values: dict[str, int] = {}
    for key, value in raw.items():
        if key in FIELD_SOURCES:
            fields[FIELD_SOURCES[key]] = value
        elif key in ("audio_seconds", "input_audio_seconds"):
            unit_values["seconds"] = max(unit_values.get("seconds", 0), value)
        elif key in UNIT_SOURCES:
            unit_values[UNIT_SOURCES[key]] = value
        else:
            details[key] = value
    if not units:  # a free model: still a call with tokens
        fields = {"input_tokens": leaf_of("input_tokens"), "output_tokens": leaf_of("output_tokens")}
    if reasoning is not None and "output_tokens" in fields and "reasoning_tokens" not in fields:
        fields["reasoning_tokens"] = min(reasoning, fields["output_tokens"])
    usage = TokenUsage.build(**fields, details=details or None)
    return usage, (Units(**unit_values) if unit_values else None)


def reference_for(provider: gp.Provider, model: gp.ModelInfo, providers: list[gp.Provider]) -> str | None:
    """A model name that genai-prices resolves to exactly this entry, if there is one."""
    candidates = [model.id, *_clause_names(model.match)]
    for name in candidates:
        if provider.find_model(name, all_providers=providers) is model:
            return name
    return None


def _clause_names(clause: object) -> Iterator[str]:
    if isinstance(clause, gp.ClauseEquals):
        yield clause.equals
    elif isinstance(clause, gp.ClauseStartsWith):
        yield clause.starts_with
        yield clause.starts_with + "-2025-01-01"
    elif isinstance(clause, gp.ClauseOr):
        for child in clause.or_:
            yield from _clause_names(child)
    elif isinstance(clause, gp.ClauseAnd):
        for child in clause.and_:
            yield from _clause_names(child)


def dates_for(model: gp.ModelInfo, default: datetime) -> list[datetime]:
    """Timestamps covering every price period of a model (each boundary, the day before it,
    an early date), plus inside and outside any daily (off-peak) window."""
    boundaries, daily = price_boundaries(model)
    dates = {default, datetime(2024, 6, 1, 12, tzinfo=default.tzinfo)}
    for boundary in boundaries:
        dates.add(boundary + timedelta(hours=12))
        dates.add(boundary - timedelta(hours=12))
    if daily:
        edges = [(c.start_time, c.end_time) for c in daily]
        for base in list(dates):
            for hour in (3, 10, 17, 22):
                dates.add(base.replace(hour=hour, minute=30))
            for start, end in edges:  # exactly on and just before each window edge
                for edge in (start, end):
                    on = base.replace(hour=edge.hour, minute=edge.minute, second=edge.second, microsecond=0)
                    dates.update((on, on - timedelta(microseconds=1)))
    return sorted(dates)


def tiers_for(model: gp.ModelInfo) -> list[tuple[str | None, dict[str, str] | None]]:
    """(tokentrail service tier, the genai-prices price context of the catalog variant)."""
    out: list[tuple[str | None, dict[str, str] | None]] = [(None, None)]
    for variant in model.price_variants or ():
        when = dict(variant.when)
        if when == {"processing": "batch"}:
            tier = "batch"
        elif when == {"speed": "fast"}:
            tier = "fast"
        elif set(when) == {"service_tier"} and when["service_tier"] != "default":
            tier = when["service_tier"]
        else:
            continue
        if (tier, when) not in out:
            out.append((tier, when))
    return out
