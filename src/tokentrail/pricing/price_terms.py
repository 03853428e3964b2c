"""Catalog prices as genai-prices applies them: validated (unit, price) pairs in its order,
the cliff rule for tiers, the cost bucket of each unit, and exact scaling for multipliers."""

from __future__ import annotations

from decimal import Decimal

from genai_prices import types as gp
from genai_prices.units import UnitDef, UnitRegistry
from genai_prices.validation import validate_priced_units

# tokentrail's cost buckets.
INPUT, CACHE_READ, CACHE_WRITE, OUTPUT, OTHER = range(5)


def bucket_of(unit: UnitDef) -> int:
    dims = unit.dimensions
    if dims.get("family") == "tokens":
        if dims.get("direction") == "output":
            return OUTPUT
        token_type = dims.get("token_type")
        if token_type == "cache_read":
            return CACHE_READ
        if token_type == "cache_write":
            return CACHE_WRITE
        return INPUT
    return OTHER


Resolved = list[tuple[UnitDef, Decimal | gp.TieredPrices]]


def resolved_prices(model_price: gp.ModelPrice, registry: UnitRegistry) -> Resolved:
    """(unit, price) in genai-prices' order; raises ValueError where genai-prices would."""
    resolved: Resolved = []
    for key, value in model_price.__dict__.items():
        if key.startswith("_") or value is None:
            continue
        try:
            unit = registry.unit_for_price_key(key)
        except KeyError:
            continue  # genai-prices warns and skips unknown price keys
        resolved.append((unit, _checked(key, value)))
    validate_priced_units(tuple(unit for unit, _ in resolved), registry)
    return resolved


def _checked(key: str, value: object) -> Decimal | gp.TieredPrices:
    def ok(v: object) -> bool:
        return isinstance(v, Decimal) and v.is_finite() and v >= 0

    if ok(value):
        return value  # type: ignore[return-value]
    if isinstance(value, gp.TieredPrices) and ok(value.base):
        starts = [t.start for t in value.tiers]
        valid_starts = all(type(s) is int and s >= 0 for s in starts) and starts == sorted(starts)
        if valid_starts and all(ok(t.price) for t in value.tiers):
            return value
    raise ValueError(f"Invalid price value for {key}: expected a finite non-negative Decimal or valid tiered prices")


def applicable_price(price: Decimal | gp.TieredPrices, total_input: int) -> Decimal:
    # The cliff rule of genai_prices.types.calc_unit_price: the highest tier strictly exceeded.
    if not isinstance(price, gp.TieredPrices):
        return price
    for tier in reversed(price.tiers):
        if total_input > tier.start:
            return tier.price
    return price.base


def scale_price(model_price: gp.ModelPrice, factor: Decimal) -> gp.ModelPrice:
    """Every rate of a price multiplied by `factor` (a discount or uplift), tiers included."""
    scaled: dict[str, Decimal | gp.TieredPrices | None] = {}
    for key, value in model_price.__dict__.items():
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, gp.TieredPrices):
            tiers = [gp.Tier(start=t.start, price=t.price * factor) for t in value.tiers]
            scaled[key] = gp.TieredPrices(base=value.base * factor, tiers=tiers)
        else:
            scaled[key] = value * factor
    return gp.ModelPrice(**scaled)


__all__ = [
    "CACHE_READ",
    "CACHE_WRITE",
    "INPUT",
    "OTHER",
    "OUTPUT",
    "Resolved",
    "applicable_price",
    "bucket_of",
    "resolved_prices",
    "scale_price",
]
