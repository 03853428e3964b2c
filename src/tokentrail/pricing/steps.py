"""The steps that may price one (provider, model): a catalog entry compiled per price period
and tier, an overrides/supplement [[price]] rule, an [[alias]]; and their ordered Resolution."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Protocol

from genai_prices import types as gp
from genai_prices.units import UnitRegistry

from tokentrail.core.cost import CostBreakdown, PricingStatus
from tokentrail.pricing.catalog import Catalog, CatalogMatch, price_boundaries
from tokentrail.pricing.compiled import CompiledPrice, PriceMeta, compile_price
from tokentrail.pricing.overrides import ANY, AliasRule, PriceRule, normalize_tier
from tokentrail.pricing.price_terms import scale_price

# Tier key -> genai-prices price context. "fast" also selects Anthropic's fast mode variants
# ({"speed": "fast"}); no catalog model has both kinds, so the two never compete.
PRICE_CONTEXTS: dict[str, dict[str, str]] = {
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
    "fast": {"service_tier": "fast", "speed": "fast"},
    "batch": {"processing": "batch"},
}
# Groq bills these transcription models for at least 10 seconds (mirrors genai-prices).
_GROQ_MIN_BILLED = frozenset({"whisper-large-v3", "whisper-large-v3-turbo"})


def price_context(service_tier: str | None) -> dict[str, str] | None:
    """The genai-prices price context a service tier selects (None: the standard price)."""
    tier = normalize_tier(service_tier)
    return None if tier is None else dict(PRICE_CONTEXTS[tier])


@dataclass(frozen=True, slots=True, eq=False)
class Priced:
    """The price that applies: its compiled form and where it came from."""

    compiled: CompiledPrice | None  # None when the price data cannot be used
    source: str  # "override", "supplement" or "catalog"
    status: PricingStatus
    model: str  # reported as priced_model
    problem: str | None = None


class Step(Protocol):
    def price(self, at: datetime, tier: str | None) -> Priced | None: ...


class CatalogStep:
    """A genai-prices model entry, compiled per (price period, tier) on first use."""

    __slots__ = (
        "_boundaries", "_by_tier", "_cache", "_cuts", "_ignore_tier", "_meta", "_min_seconds", "_model", "_periods",
        "_registry", "price",
    )  # fmt: skip

    def __init__(self, match: CatalogMatch, catalog: Catalog, version: str) -> None:
        self._model = match.model
        self._boundaries, daily = price_boundaries(match.model)
        # Daily (off-peak) windows change the price only at their edges: the UTC time of day is
        # reduced to the segment between two edges.
        self._cuts = tuple(sorted({edge for c in daily for edge in _utc_window(c)}))
        self._ignore_tier = match.borrowed
        groq_minimum = match.provider.id == "groq" and match.model.id in _GROQ_MIN_BILLED
        self._min_seconds = 10 if groq_minimum else None
        self._registry = catalog.registry
        self._meta = PriceMeta(PricingStatus.PRICED, version, "catalog", match.model.id)
        self._by_tier: dict[str | None, Priced] = {}  # entries with one price for all time
        self._periods: dict[str | None, list[Priced | None]] = {}  # per tier, one slot per period
        self._cache: dict[tuple[object, ...], Priced] = {}  # entries with daily (off-peak) prices
        if daily:
            self.price = self._daily_price
        elif self._boundaries:
            self.price = self._dated_price
        else:
            self.price = self._timeless_price

    def _timeless_price(self, at: datetime, tier: str | None) -> Priced:
        if self._ignore_tier:
            tier = None
        priced = self._by_tier.get(tier)
        if priced is None:
            priced = self._by_tier[tier] = self._compile(at, tier)
        return priced

    def _dated_price(self, at: datetime, tier: str | None) -> Priced:
        if self._ignore_tier:
            tier = None
        periods = self._periods.get(tier)
        if periods is None:
            periods = self._periods[tier] = [None] * (len(self._boundaries) + 1)
        period = bisect_right(self._boundaries, at)
        priced = periods[period]
        if priced is None:
            priced = periods[period] = self._compile(at, tier)
        return priced

    def _daily_price(self, at: datetime, tier: str | None) -> Priced:
        if self._ignore_tier:
            tier = None
        utc = at if at.tzinfo is UTC else at.astimezone(UTC)
        now = ((utc.hour * 60 + utc.minute) * 60 + utc.second) * 1_000_000 + utc.microsecond
        key = (bisect_right(self._boundaries, at), tier, bisect_right(self._cuts, now))
        priced = self._cache.get(key)
        if priced is None:
            priced = self._cache[key] = self._compile(at, tier)
        return priced

    def _compile(self, at: datetime, tier: str | None) -> Priced:
        # genai-prices' own variant and date resolution, at a timestamp of this period.
        model_price = self._model.get_prices(at, PRICE_CONTEXTS[tier] if tier else None)
        try:
            compiled = compile_price(model_price, self._registry, self._meta, min_audio_seconds=self._min_seconds)
        except ValueError as exc:
            return Priced(
                None, "catalog", PricingStatus.UNPRICED, self._model.id, f"the catalog price is unusable: {exc}"
            )
        return Priced(compiled, "catalog", PricingStatus.PRICED, self._model.id)


def _utc_window(constraint: gp.TimeOfDateConstraint) -> tuple[int, int]:
    """A daily window as UTC microseconds of the day, as TimeOfDateConstraint.active compares."""

    def micros(value: time) -> int:
        if value.tzinfo is not None:
            value = datetime.combine(date(1970, 1, 1), value).astimezone(UTC).timetz()
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond

    return micros(constraint.start_time), micros(constraint.end_time)


def status_of(layer: str) -> PricingStatus:
    return PricingStatus.OVERRIDE if layer == "override" else PricingStatus.PRICED


class RuleStep:
    """A [[price]] entry: its own compiled price, or a multiplier on the layers below."""

    __slots__ = ("_explicit", "_registry", "_scaled", "_version", "base", "rule")

    def __init__(self, rule: PriceRule, explicit: Priced | None, registry: UnitRegistry, version: str) -> None:
        self.rule = rule
        self._explicit = explicit
        self._registry = registry
        self._version = version
        self.base: Resolution | None = None  # what a multiplier applies to
        self._scaled: dict[int, tuple[Priced, Priced]] = {}

    def price(self, at: datetime, tier: str | None) -> Priced | None:
        rule = self.rule
        if (rule.start is not None and at < rule.start) or (rule.end is not None and at >= rule.end):
            return None
        if rule.service_tier != ANY and rule.service_tier != tier:
            return None
        if self._explicit is not None:
            return self._explicit
        base = self.base.price(at, tier) if self.base is not None else None
        if base is None or base.compiled is None:
            return base
        hit = self._scaled.get(id(base))
        if hit is None or hit[0] is not base:
            hit = (base, self._scale(base, base.compiled))
            self._scaled[id(base)] = hit
        return hit[1]

    def _scale(self, base: Priced, compiled: CompiledPrice) -> Priced:
        rule = self.rule
        factor = rule.multiplier
        assert factor is not None  # only multiplier rules have no explicit price
        scaled = compile_price(
            scale_price(compiled.model_price, factor),
            self._registry,
            PriceMeta(status_of(rule.layer), self._version, rule.layer, base.model),
            image_price=None if compiled.image_price is None else compiled.image_price * factor,
            min_audio_seconds=compiled.min_audio_seconds,
        )
        return Priced(scaled, rule.layer, status_of(rule.layer), base.model)


class AliasStep:
    """An [[alias]] entry: price the call as another model while the alias is in force."""

    __slots__ = ("alias", "target")

    def __init__(self, alias: AliasRule, target: Resolution) -> None:
        self.alias = alias
        self.target = target

    def price(self, at: datetime, tier: str | None) -> Priced | None:
        alias = self.alias
        if (alias.start is not None and at < alias.start) or (alias.end is not None and at >= alias.end):
            return None
        return self.target.price(at, tier)


class Resolution:
    """Every step that may price one (provider, model), highest layer first."""

    __slots__ = ("price", "steps", "unknown")

    def __init__(self, steps: Sequence[Step], unknown: CostBreakdown | None = None) -> None:
        self.steps = tuple(steps)
        self.unknown = unknown  # the result when no step prices the call
        # A single step (the usual catalog-only case) is called directly.
        self.price = self.steps[0].price if len(self.steps) == 1 else self._first

    def _first(self, at: datetime, tier: str | None) -> Priced | None:
        for step in self.steps:
            priced = step.price(at, tier)
            if priced is not None:
                return priced
        return None


__all__ = [
    "PRICE_CONTEXTS",
    "AliasStep",
    "CatalogStep",
    "Priced",
    "Resolution",
    "RuleStep",
    "Step",
    "price_context",
    "status_of",
]
