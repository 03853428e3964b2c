"""Property: for random valid usages on random catalog models, dates and tiers, the total is the
sum of the buckets and the very Decimal genai-prices computes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import genai_prices
from _pricing_usages import PARITY_PROVIDERS, build_usage, reference_for, tiers_for
from genai_prices.data import providers as bundled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentrail.core import TokenUsage, Units
from tokentrail.pricing import PriceEngine, usage_values

ENGINE = PriceEngine(supplement=False)
ENTRIES = [(p, m, reference_for(p, m, bundled) or m.id) for p in bundled if p.id in PARITY_PROVIDERS for m in p.models]
START = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def calls(draw: st.DrawFn):
    provider, model, ref = draw(st.sampled_from(ENTRIES))
    at = START + timedelta(minutes=draw(st.integers(0, 3 * 365 * 24 * 60)))
    tier, context = draw(st.sampled_from(tiers_for(model)))
    price = model.get_prices(at, context)
    counts = draw(st.dictionaries(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1), st.integers(0, 400_000)))
    default = draw(st.integers(0, 300_000))
    usage, units = build_usage(
        price, ENGINE.catalog.registry, lambda key: counts.get(key, default),
        above_tier=draw(st.booleans()), reasoning=draw(st.none() | st.integers(0, 50_000)),
    )  # fmt: skip
    return provider, ref, usage, units, at, tier, context


def check(call) -> bool:
    """Assert tokentrail agrees with genai-prices; True when the call was priced."""
    provider, ref, usage, units, at, tier, context = call
    ours = ENGINE.calculate_cost(PARITY_PROVIDERS[provider.id], ref, usage, at=at, service_tier=tier, units=units)
    values = usage_values(usage, units, ENGINE.catalog.registry)
    try:
        theirs = genai_prices.calc_price(
            genai_prices.Usage(**values), ref, provider_id=provider.id, genai_request_timestamp=at,
            price_context=context,
        ).total_price  # fmt: skip
    except ValueError:
        assert ours.total_cost is None and ours.reason
        return False
    assert ours.total_cost == theirs
    parts = (ours.input_cost, ours.cache_read_cost, ours.cache_write_cost, ours.output_cost, ours.other_cost)
    assert sum(parts) == ours.total_cost  # type: ignore[arg-type]
    assert all(part >= 0 for part in parts)  # type: ignore[operator]
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_total_is_the_bucket_sum_and_equals_genai_prices(call) -> None:
    assert check(call)  # consistent usages are always priced


REPORTED_KEYS = sorted(k for k in ENGINE.catalog.registry.units if k != "requests")


@st.composite
def raw_calls(draw: st.DrawFn):
    """Arbitrary usages valid for TokenUsage (finer counts may contradict the totals)."""
    provider, model, ref = draw(st.sampled_from(ENTRIES))
    at = START + timedelta(days=draw(st.integers(0, 3 * 365)))
    tier, context = draw(st.sampled_from(tiers_for(model)))
    total_in = draw(st.integers(0, 300_000))
    read = draw(st.none() | st.integers(0, total_in))
    write = draw(st.none() | st.integers(0, total_in - (read or 0)))
    out = draw(st.none() | st.integers(0, 50_000))
    usage = TokenUsage.build(
        input_tokens=total_in, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write,
        audio_input_tokens=draw(st.none() | st.integers(0, total_in)),
        reasoning_tokens=None if out is None else draw(st.none() | st.integers(0, out)),
        details=draw(st.none() | st.dictionaries(st.sampled_from(REPORTED_KEYS), st.integers(0, 80_000), max_size=3)),
    )  # fmt: skip
    units = draw(st.none() | st.builds(Units, pages=st.none() | st.integers(0, 500),
                                        seconds=st.none() | st.floats(0, 5000, allow_nan=False)))  # fmt: skip
    return provider, ref, usage, units, at, tier, context


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_calls())
def test_arbitrary_usages_agree_with_genai_prices_or_are_unpriced(call) -> None:
    check(call)
