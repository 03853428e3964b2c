"""Parity with genai-prices: for every model entry of the main providers, at every price
period and service tier the catalog has, tokentrail's compiled engine returns the very same
Decimal total as `genai_prices.calc_price` on the same usage (supplement off, no overrides)."""

from __future__ import annotations

from datetime import UTC, datetime

import genai_prices
import pytest
from _pricing_usages import PARITY_PROVIDERS, build_usage, dates_for, reference_for, tiers_for
from genai_prices.data import providers as bundled

from tokentrail.core import TokenUsage, Units
from tokentrail.pricing import PriceEngine, usage_values

NOW = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)


def _entries() -> list[tuple[str, str]]:
    return [(p.id, m.id) for p in bundled if p.id in PARITY_PROVIDERS for m in p.models]


@pytest.fixture(scope="module")
def engine() -> PriceEngine:
    return PriceEngine(overrides=None, supplement=False)


def _leaf(key: str) -> int:
    # Distinct, uneven leaf counts so that a count priced at the wrong rate shows.
    return 1000 + 37 * len(key) + 7 * sum(map(ord, key)) % 911


def _compare(engine: PriceEngine, provider_id: str, model: str, usage: TokenUsage, units: Units | None,
             at: datetime, tier: str | None, context: dict[str, str] | None) -> bool:  # fmt: skip
    """Assert tokentrail == genai-prices; True when genai-prices priced the call."""
    ours = engine.calculate_cost(PARITY_PROVIDERS[provider_id], model, usage, at=at, service_tier=tier, units=units)
    values = usage_values(usage, units, engine.catalog.registry)
    try:
        theirs = genai_prices.calc_price(
            genai_prices.Usage(**values), model, provider_id=provider_id, genai_request_timestamp=at,
            price_context=context,
        )  # fmt: skip
    except ValueError:
        assert ours.total_cost is None, f"genai-prices rejects {values} but tokentrail priced it: {ours}"
        return False
    where = f"{provider_id}/{model} at {at.isoformat()} tier={tier} usage={values}"
    assert ours.total_cost == theirs.total_price, where
    # Same digits too, not only the same value.
    assert str(ours.total_cost) == str(theirs.total_price), where
    buckets = (ours.input_cost, ours.cache_read_cost, ours.cache_write_cost, ours.output_cost, ours.other_cost)
    assert sum(buckets) == ours.total_cost, where  # type: ignore[arg-type]
    assert ours.pricing_status.value == "priced" and ours.price_source == "catalog", where
    return True


@pytest.mark.parametrize(("provider_id", "model_id"), _entries(), ids=[f"{p}/{m}" for p, m in _entries()])
def test_every_catalog_model_matches_genai_prices(engine: PriceEngine, provider_id: str, model_id: str) -> None:
    provider = next(p for p in bundled if p.id == provider_id)
    model = next(m for m in provider.models if m.id == model_id)
    ref = reference_for(provider, model, bundled) or model.id
    priced = 0
    for at in dates_for(model, NOW):
        for tier, context in tiers_for(model):
            price = model.get_prices(at, context)
            registry = engine.catalog.registry
            for above in (False, True):
                usage, units = build_usage(price, registry, _leaf, above_tier=above, reasoning=333)
                priced += _compare(engine, provider_id, ref, usage, units, at, tier, context)
    assert priced, f"genai-prices priced no usage of {provider_id}/{model_id}"


def test_almost_every_entry_is_reachable_by_name() -> None:
    """The parity loop prices each entry under a name that resolves to that very entry."""
    entries = [(p, m) for p in bundled if p.id in PARITY_PROVIDERS for m in p.models]
    unreachable = [m.id for p, m in entries if reference_for(p, m, bundled) is None]
    assert len(entries) > 300
    assert len(unreachable) <= len(entries) // 20, unreachable
