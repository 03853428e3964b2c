"""The price engine: three layers (user overrides, supplement, catalog) resolved once per
(provider, model) and memoised, then one compiled kernel per price period and service tier.

Per call the work is: one dict look-up for the resolution, a few datetime comparisons to find
the price period, one dict look-up for the compiled price, and the kernel's arithmetic.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tokentrail.core.cost import CostBreakdown, PricingStatus, to_decimal, trusted_cost_breakdown
from tokentrail.core.errors import ValidationError
from tokentrail.core.names import normalize_provider
from tokentrail.core.usage import TokenUsage, Units
from tokentrail.pricing.catalog import GENAI_PRICES_VERSION, Catalog, default_catalog
from tokentrail.pricing.compiled import PriceMeta, UsageMismatch, compile_price
from tokentrail.pricing.overrides import PriceFile, PriceRule, load_price_file, normalize_tier
from tokentrail.pricing.steps import (
    PRICE_CONTEXTS,
    AliasStep,
    CatalogStep,
    Priced,
    Resolution,
    RuleStep,
    Step,
    price_context,
    status_of,
)
from tokentrail.pricing.supplement import load_supplement

_MAX_ALIAS_DEPTH = 8
_INDEX_LIMIT = 100_000  # distinct (provider, model) spellings kept before the index is reset
_EMPTY_USAGE = TokenUsage()
NO_USAGE = "no usage reported"


class PriceEngine:
    """Prices calls from the catalog, the supplement and an optional overrides file.

    `PriceEngine(overrides=None, supplement=False)` is the bare genai-prices catalog, which is
    what the parity tests compare against `genai_prices.calc_price`.
    """

    def __init__(
        self,
        overrides: str | Path | None = None,
        *,
        supplement: bool = True,
        catalog: Catalog | None = None,
    ) -> None:
        self.catalog = catalog if catalog is not None else default_catalog()
        registry = self.catalog.registry
        self.overrides: PriceFile | None = (
            load_price_file(overrides, layer="override", registry=registry) if overrides else None
        )
        self.supplement: PriceFile | None = load_supplement(registry) if supplement else None
        self.layers: tuple[PriceFile, ...] = tuple(f for f in (self.overrides, self.supplement) if f is not None)
        self.price_version = (
            f"genai-prices={GENAI_PRICES_VERSION}"
            f";supplement={self.supplement.digest if self.supplement else 'off'}"
            f";overrides={self.overrides.digest if self.overrides else 'none'}"
        )
        self.resolutions_built = 0  # how many (provider, model) spellings were resolved
        self._index: dict[tuple[str, str], Resolution] = {}
        self._explicit: dict[tuple[int, str], Priced] = {}
        self._no_usage = CostBreakdown(
            pricing_status=PricingStatus.UNPRICED, price_version=self.price_version, reason=NO_USAGE
        )

    # ---- the hot path ----------------------------------------------------------------------
    def calculate_cost(
        self,
        provider: str,
        model: str,
        usage: TokenUsage | None,
        *,
        at: datetime | None = None,
        service_tier: str | None = None,
        units: Units | None = None,
    ) -> CostBreakdown:
        """Cost of one call; see `tokentrail.pricing.calculate_cost`."""
        resolution = self._index.get((provider, model))
        if resolution is None:
            resolution = self.resolution(provider, model)
        if usage is None:
            usage = _EMPTY_USAGE
        if usage.input_tokens is None and usage.output_tokens is None and _reports_nothing(usage, units):
            return self._no_usage
        if at is None:
            at = datetime.now(UTC)
        elif at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        tier = normalize_tier(service_tier) if service_tier else None
        priced = resolution.price(at, tier)
        if priced is None:
            return resolution.unknown  # type: ignore[return-value]
        compiled = priced.compiled
        if compiled is None:
            return self._unpriced(priced, priced.problem or "no usable price")
        try:
            cost = compiled.kernel(usage, units)
        except UsageMismatch as exc:
            return self._unpriced(priced, f"the usage does not fit the price of {priced.model}: {exc}")
        if usage.other_models:
            return self._add_other_models(cost, provider, usage, at, service_tier)
        return cost

    def _add_other_models(
        self, cost: CostBreakdown, provider: str, usage: TokenUsage, at: datetime, service_tier: str | None
    ) -> CostBreakdown:
        """Add usage billed at other models' rates (Anthropic advisor iterations), same provider."""
        amounts = [cost.input_cost, cost.cache_read_cost, cost.cache_write_cost, cost.output_cost, cost.other_cost]
        total = cost.total_cost
        status = cost.pricing_status
        for name, sub in (usage.other_models or {}).items():
            if sub.is_empty:
                continue
            part = self.calculate_cost(provider, name, sub, at=at, service_tier=service_tier)
            if part.total_cost is None:
                # Leaving the part out would be a silently wrong total.
                return CostBreakdown(
                    pricing_status=PricingStatus.UNPRICED,
                    price_version=self.price_version,
                    priced_model=cost.priced_model,
                    reason=f"usage billed at {name!r} rates cannot be priced: {part.reason}",
                )
            parts = (part.input_cost, part.cache_read_cost, part.cache_write_cost, part.output_cost, part.other_cost)
            amounts = [a + b for a, b in zip(amounts, parts, strict=True)]  # type: ignore[operator]
            total = total + part.total_cost  # type: ignore[operator]
            if part.pricing_status is PricingStatus.OVERRIDE:
                status = PricingStatus.OVERRIDE
        b_in, b_read, b_write, b_out, b_other = amounts
        return trusted_cost_breakdown(
            b_in, b_read, b_write, b_out, b_other, total,  # type: ignore[arg-type]
            cost.input_price_per_1k, cost.output_price_per_1k,
            status, self.price_version, cost.price_source, cost.priced_model,
        )  # fmt: skip

    def _unpriced(self, priced: Priced, reason: str) -> CostBreakdown:
        return CostBreakdown(
            pricing_status=PricingStatus.UNPRICED,
            price_version=self.price_version,
            price_source=priced.source,
            priced_model=priced.model,
            reason=reason,
        )

    # ---- resolution ------------------------------------------------------------------------
    def resolution(self, provider: str, model: str) -> Resolution:
        """The memoised resolution of a (provider, model) spelling."""
        key = (provider, model)
        found = self._index.get(key)
        if found is not None:
            return found
        resolution = self._build(normalize_provider(provider), model, frozenset())
        self.resolutions_built += 1
        if len(self._index) >= _INDEX_LIMIT:
            self._index.clear()  # bound memory against endless distinct model names
        self._index[key] = resolution
        return resolution

    def _build(self, provider: str, model: str, seen: frozenset[tuple[str, str]]) -> Resolution:
        lowered = model.strip().lower()
        seen = seen | {(provider, lowered)}
        match = self.catalog.find(provider, model)
        catalog_id = match.model.id.lower() if match is not None else None
        steps: list[Step] = []
        for layer in self.layers:
            for rule in layer.rules:
                if rule.applies_to(provider, lowered, catalog_id):
                    explicit = self._explicit_price(rule, model)
                    steps.append(RuleStep(rule, explicit, self.catalog.registry, self.price_version))
            for alias in layer.aliases:
                if not alias.applies_to(provider, lowered, catalog_id):
                    continue
                target_provider = alias.target_provider or provider
                if (target_provider, alias.target.lower()) in seen or len(seen) > _MAX_ALIAS_DEPTH:
                    continue  # an alias cycle: ignore the alias rather than loop
                steps.append(AliasStep(alias, self._build(target_provider, alias.target, seen)))
        if match is not None:
            steps.append(CatalogStep(match, self.catalog, self.price_version))
        for i, step in enumerate(steps):
            if isinstance(step, RuleStep) and step.rule.multiplier is not None:
                rule = step.rule
                if rule.base_model is not None:
                    base_key = (rule.base_provider or provider, rule.base_model.strip().lower())
                    if base_key not in seen and len(seen) <= _MAX_ALIAS_DEPTH:  # else a cycle: no base
                        step.base = self._build(base_key[0], rule.base_model, seen)
                else:
                    step.base = Resolution(steps[i + 1 :])
        unknown = CostBreakdown(
            pricing_status=PricingStatus.UNPRICED,
            price_version=self.price_version,
            reason=f"no price known for model {model!r} of provider {provider!r}",
        )
        return Resolution(steps, unknown)

    def _explicit_price(self, rule: PriceRule, called: str) -> Priced | None:
        if rule.model_price is None:
            return None
        label = rule.label or called
        key = (id(rule), label)
        priced = self._explicit.get(key)
        if priced is None:
            meta = PriceMeta(status_of(rule.layer), self.price_version, rule.layer, label)
            try:
                compiled = compile_price(rule.model_price, self.catalog.registry, meta, image_price=rule.image_price)
            except ValueError as exc:  # validated at load; kept as a reason rather than a crash
                priced = Priced(None, rule.layer, PricingStatus.UNPRICED, label, f"the price is unusable: {exc}")
            else:
                priced = Priced(compiled, rule.layer, status_of(rule.layer), label)
            self._explicit[key] = priced
        return priced


def _reports_nothing(usage: TokenUsage, units: Units | None) -> bool:
    return usage.is_empty and not usage.other_models and (units is None or units.is_empty)


def apply_provider_reported(cost: CostBreakdown, reported: Decimal | int | str) -> CostBreakdown:
    """The provider's (or gateway's) own figure wins; tokentrail's total stays beside it."""
    amount = to_decimal("provider_reported_cost", reported)
    if amount is None:
        raise ValidationError("provider_reported_cost", "must be an amount, got None")
    return replace(
        cost,
        pricing_status=PricingStatus.PROVIDER_REPORTED,
        total_cost=amount,
        provider_reported_cost=amount,
        computed_cost=cost.total_cost,
    )


__all__ = [
    "NO_USAGE",
    "PRICE_CONTEXTS",
    "PriceEngine",
    "Priced",
    "Resolution",
    "apply_provider_reported",
    "price_context",
]
