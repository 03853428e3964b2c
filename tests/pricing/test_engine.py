"""The price engine on the cases that matter: buckets, tiers, dates, service tiers, units,
unknown models and missing usage. Expected amounts come from the catalog's own rates (and
PROVIDERS.md's facts where they pin a rate), never from tokentrail's arithmetic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices.data import providers as bundled

from tokentrail.core import CostBreakdown, PricingStatus, TokenUsage, Units
from tokentrail.core.cost import trusted_cost_breakdown
from tokentrail.pricing import (
    NO_USAGE,
    PriceEngine,
    apply_provider_reported,
    calculate_cost,
    configure_prices,
    default_engine,
    price_context,
    price_version,
    usage_values,
)

AT = datetime(2026, 11, 2, 12, tzinfo=UTC)
M = Decimal(1_000_000)


@pytest.fixture(scope="module")
def bare() -> PriceEngine:
    return PriceEngine(supplement=False)


@pytest.fixture(scope="module")
def engine() -> PriceEngine:
    return PriceEngine()


def rate(provider_id: str, model_id: str, key: str, *, at: datetime = AT, context: dict[str, str] | None = None):
    """A catalog rate (USD per million) of one entry, read from genai-prices' data."""
    provider = next(p for p in bundled if p.id == provider_id)
    model = next(m for m in provider.models if m.id == model_id)
    return getattr(model.get_prices(at, context), key)


def genai_total(provider_id: str, model: str, usage: TokenUsage, *, at: datetime = AT, tier: str | None = None):
    values = usage_values(usage, None, default_engine().catalog.registry)
    return genai_prices.calc_price(
        genai_prices.Usage(**values), model, provider_id=provider_id, genai_request_timestamp=at,
        price_context=price_context(tier),
    ).total_price  # fmt: skip


def test_openai_cached_tokens_are_inside_input_and_priced_at_the_cache_rate(bare):
    usage = TokenUsage.build(input_tokens=1493, output_tokens=125, cache_read_tokens=1280, reasoning_tokens=64)
    cost = bare.calculate_cost("openai", "gpt-4o", usage, at=AT)
    assert cost.input_cost == (1493 - 1280) * rate("openai", "gpt-4o", "input_mtok") / M
    assert cost.cache_read_cost == 1280 * rate("openai", "gpt-4o", "cache_read_mtok") / M
    assert cost.output_cost == 125 * rate("openai", "gpt-4o", "output_mtok") / M
    assert cost.cache_write_cost == 0 and cost.other_cost == 0
    assert cost.total_cost == cost.input_cost + cost.cache_read_cost + cost.output_cost
    assert cost.total_cost == genai_total("openai", "gpt-4o", usage)
    assert cost.pricing_status is PricingStatus.PRICED and cost.price_source == "catalog"
    assert cost.priced_model == "gpt-4o"
    assert cost.input_price_per_1k == Decimal("0.0025") and cost.output_price_per_1k == Decimal("0.01")


def test_anthropic_cache_writes_split_by_ttl(bare):
    # 3 uncached + 2000 read + 7000 written (5000 for 5 minutes, 2000 for 1 hour), inclusive.
    usage = TokenUsage.build(
        input_tokens=9003, output_tokens=400, cache_read_tokens=2000, cache_write_tokens=7000,
        details={"cache_write_5m_tokens": 5000, "cache_write_1h_tokens": 2000},
    )  # fmt: skip
    cost = bare.calculate_cost("anthropic", "claude-sonnet-4-5", usage, at=AT)
    base = rate("anthropic", "claude-sonnet-4-5", "input_mtok").base
    # PROVIDERS.md A.5: writes 1.25x input (5 min) and 2x (1 hour), reads 0.1x.
    assert cost.cache_write_cost == (5000 * base * Decimal("1.25") + 2000 * base * 2) / M
    assert cost.cache_read_cost == 2000 * base * Decimal("0.1") / M
    assert cost.input_cost == 3 * base / M
    assert cost.total_cost == genai_total("anthropic", "claude-sonnet-4-5", usage)


def test_reasoning_tokens_are_billed_as_output(bare):
    usage = TokenUsage.build(input_tokens=100, output_tokens=2320, reasoning_tokens=1792)
    cost = bare.calculate_cost("openai", "o4-mini", usage, at=AT)
    assert cost.output_cost == 2320 * rate("openai", "o4-mini", "output_mtok") / M


def test_unknown_model_is_unpriced_never_zero(engine):
    cost = engine.calculate_cost("openai", "gpt-nonexistent-9", TokenUsage.build(input_tokens=10, output_tokens=5))
    assert cost.pricing_status is PricingStatus.UNPRICED
    assert cost.total_cost is None and cost.input_cost is None
    assert "gpt-nonexistent-9" in (cost.reason or "")
    assert cost.price_version == engine.price_version


@pytest.mark.parametrize("usage", [None, TokenUsage()])
def test_missing_usage_is_unpriced(engine, usage):
    cost = engine.calculate_cost("openai", "gpt-4o", usage)
    assert cost.pricing_status is PricingStatus.UNPRICED and cost.total_cost is None
    assert cost.reason == NO_USAGE


def test_inconsistent_finer_counts_are_unpriced_with_the_reason(bare):
    # A 1-hour write count larger than all cache writes: genai-prices refuses it, and so do we.
    usage = TokenUsage.build(
        input_tokens=5000, output_tokens=10, cache_write_tokens=100, details={"cache_write_1h_tokens": 900}
    )
    cost = bare.calculate_cost("anthropic", "claude-sonnet-4-5", usage, at=AT)
    assert cost.total_cost is None and cost.pricing_status is PricingStatus.UNPRICED
    assert "cache_write_tokens" in (cost.reason or "")
    with pytest.raises(ValueError):
        genai_total("anthropic", "claude-sonnet-4-5", usage)


def test_long_context_cliff_is_strictly_above_200k(bare):
    def cost(prompt: int) -> CostBreakdown:
        usage = TokenUsage.build(input_tokens=prompt, output_tokens=1000)
        return bare.calculate_cost("gemini", "gemini-2.5-pro", usage, at=AT)

    at_limit, above = cost(200_000), cost(200_001)
    tiered_in = rate("google", "gemini-2.5-pro", "input_mtok")
    tiered_out = rate("google", "gemini-2.5-pro", "output_mtok")
    assert tiered_in.tiers[0].start == 200_000
    assert at_limit.input_cost == 200_000 * tiered_in.base / M
    assert at_limit.output_cost == 1000 * tiered_out.base / M
    # One token more moves the whole request, output included, to the tier (PROVIDERS A.6).
    assert above.input_cost == 200_001 * Decimal("2.5") / M
    assert above.output_cost == 1000 * Decimal("15") / M
    assert above.input_price_per_1k == Decimal("0.0025") and at_limit.input_price_per_1k == Decimal("0.00125")


def test_flex_tier_selects_the_catalog_variant(bare):
    usage = TokenUsage.build(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=4_000)
    standard = bare.calculate_cost("openai", "gpt-5", usage, at=AT)
    flex = bare.calculate_cost("openai", "gpt-5", usage, at=AT, service_tier="flex")
    assert flex.total_cost * 2 == standard.total_cost  # half price on gpt-5 (PROVIDERS A.2)
    assert flex.total_cost == genai_total("openai", "gpt-5", usage, tier="flex")
    for spelled in ("FLEX", " flex "):
        assert bare.calculate_cost("openai", "gpt-5", usage, at=AT, service_tier=spelled) == flex
    for standard_tier in ("default", "scale", "auto", "standard", "something-new"):
        assert bare.calculate_cost("openai", "gpt-5", usage, at=AT, service_tier=standard_tier) == standard
    batch = bare.calculate_cost("openai", "gpt-5", usage, at=AT, service_tier="batch")
    assert batch.total_cost == genai_total("openai", "gpt-5", usage, tier="batch") < standard.total_cost


def test_fast_tier_covers_anthropic_fast_mode(bare):
    usage = TokenUsage.build(input_tokens=1_000, output_tokens=1_000)
    fast = bare.calculate_cost("anthropic", "claude-opus-4-8", usage, at=AT, service_tier="fast")
    speed = {"speed": "fast"}
    fast_rates = [rate("anthropic", "claude-opus-4-8", k, context=speed) for k in ("input_mtok", "output_mtok")]
    expected = 1000 * sum(fast_rates) / M
    assert fast.total_cost == expected
    assert fast.total_cost > bare.calculate_cost("anthropic", "claude-opus-4-8", usage, at=AT).total_cost


def test_dated_price_applies_at_the_call_time(bare):
    usage = TokenUsage.build(input_tokens=100_000, output_tokens=100_000)  # below the long-context tier
    before = bare.calculate_cost("openai", "gpt-5.6-sol", usage, at=datetime(2026, 8, 20, 23, 59, tzinfo=UTC))
    after = bare.calculate_cost("openai", "gpt-5.6-sol", usage, at=datetime(2026, 8, 21, 0, 0, tzinfo=UTC))
    # PROVIDERS B.1: $5/$30 per million until 2026-08-21, then $4/$20.
    assert (before.input_cost, before.output_cost) == (Decimal("0.5"), Decimal(3))
    assert (after.input_cost, after.output_cost) == (Decimal("0.4"), Decimal(2))
    naive = bare.calculate_cost("openai", "gpt-5.6-sol", usage, at=datetime(2026, 8, 20, 23, 59))
    assert naive == before  # naive timestamps are UTC


def test_bedrock_regional_profile_uses_the_regional_rate(bare):
    usage = TokenUsage.build(input_tokens=1_000_000, output_tokens=1_000_000)
    for model in (
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ):
        cost = bare.calculate_cost("aws.bedrock", model, usage, at=AT)
        assert (cost.input_cost, cost.output_cost) == (Decimal("3.3"), Decimal("16.5")), model  # PROVIDERS A.7
    global_profile = bare.calculate_cost("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", usage, at=AT)
    assert (global_profile.input_cost, global_profile.output_cost) == (Decimal(3), Decimal(15))


def test_provider_spellings_fallbacks_and_gateway_prefixes(bare):
    usage = TokenUsage.build(input_tokens=1000, output_tokens=100)
    reference = bare.calculate_cost("openai", "gpt-4o", usage, at=AT).total_cost
    assert bare.calculate_cost("OpenAI", "GPT-4o", usage, at=AT).total_cost == reference
    assert bare.calculate_cost("openai", "openai/gpt-4o", usage, at=AT).total_cost == reference
    # A provider genai-prices does not know falls back to its matching by model name.
    assert bare.calculate_cost("my-gateway", "gpt-4o", usage, at=AT).total_cost == reference
    azure = bare.calculate_cost("azure_openai", "gpt-4.1-2025-04-14", usage, at=AT)
    assert azure.total_cost == genai_total("azure", "gpt-4.1-2025-04-14", usage)
    vertex_claude = bare.calculate_cost("vertex", "claude-sonnet-4-5", usage, at=AT)
    assert vertex_claude.total_cost == genai_total("google", "claude-sonnet-4-5", usage)


def test_units_price_ocr_pages_and_transcription_seconds(bare):
    ocr = bare.calculate_cost("mistral", "mistral-ocr-latest", None, at=AT, units=Units(pages=250))
    per_thousand = rate("mistral", "mistral-ocr-latest", "input_document_kpages")
    assert ocr.other_cost == ocr.total_cost == 250 * per_thousand / 1000
    assert ocr.input_price_per_1k is None
    # Groq bills at least 10 seconds per transcription, as genai-prices models it.
    short = bare.calculate_cost("groq", "whisper-large-v3", None, at=AT, units=Units(seconds=3.5))
    hours = rate("groq", "whisper-large-v3", "audio_hours") or rate("groq", "whisper-large-v3", "input_audio_hours")
    assert short.total_cost == 10 * hours / 3600
    long = bare.calculate_cost("groq", "whisper-large-v3", None, at=AT, units=Units(seconds=90))
    assert long.total_cost == 90 * hours / 3600
    tts = bare.calculate_cost("openai", "tts-1", TokenUsage(), at=AT, units=Units(characters=2000))
    assert tts.total_cost == 2000 * rate("openai", "tts-1", "input_mchars") / M


def test_other_models_are_priced_at_their_own_rates(bare):
    advisor = TokenUsage.build(input_tokens=2000, output_tokens=500)
    usage = TokenUsage.build(input_tokens=1000, output_tokens=100, other_models={"claude-opus-4-1": advisor})
    combined = bare.calculate_cost("anthropic", "claude-sonnet-4-5", usage, at=AT)
    main = bare.calculate_cost("anthropic", "claude-sonnet-4-5", replace(usage, other_models=None), at=AT)
    side = bare.calculate_cost("anthropic", "claude-opus-4-1", advisor, at=AT)
    assert combined.total_cost == main.total_cost + side.total_cost
    assert combined.output_cost == main.output_cost + side.output_cost
    assert combined.priced_model == "claude-sonnet-4-5"
    unknown = TokenUsage.build(input_tokens=1, output_tokens=1, other_models={"claude-unknown": advisor})
    cost = bare.calculate_cost("anthropic", "claude-sonnet-4-5", unknown, at=AT)
    assert cost.total_cost is None and "claude-unknown" in (cost.reason or "")


def test_provider_reported_cost_wins_and_keeps_ours(bare):
    cost = bare.calculate_cost("openai", "gpt-4o", TokenUsage.build(input_tokens=1000, output_tokens=100), at=AT)
    reported = apply_provider_reported(cost, Decimal("0.0042"))
    assert reported.pricing_status is PricingStatus.PROVIDER_REPORTED
    assert reported.total_cost == reported.provider_reported_cost == Decimal("0.0042")
    assert reported.computed_cost == cost.total_cost
    assert apply_provider_reported(cost, "0.0042") == reported
    unpriced = bare.calculate_cost("openai", "nope", TokenUsage.build(input_tokens=1, output_tokens=1))
    assert apply_provider_reported(unpriced, 1).computed_cost is None
    with pytest.raises(ValueError, match="provider_reported_cost"):
        apply_provider_reported(cost, "-1")


def test_resolution_is_memoised(engine):
    fresh = PriceEngine()
    usage = TokenUsage.build(input_tokens=100, output_tokens=10)
    fresh.calculate_cost("openai", "gpt-4o", usage, at=AT)
    built = fresh.resolutions_built
    first = fresh.resolution("openai", "gpt-4o")
    for _ in range(3):
        fresh.calculate_cost("openai", "gpt-4o", usage, at=AT)
    assert fresh.resolutions_built == built  # a repeated (provider, model) is a dict hit
    assert fresh.resolution("openai", "gpt-4o") is first
    # ... and the compiled price of one period and tier is built once.
    assert first.price(AT, None) is first.price(datetime(2026, 11, 3, tzinfo=UTC), None)
    fresh.calculate_cost("openai", "gpt-4o-mini", usage, at=AT)
    assert fresh.resolutions_built == built + 1


def test_trusted_constructor_builds_an_ordinary_cost_breakdown():
    args = [Decimal("0.1"), Decimal(0), Decimal(0), Decimal("0.2"), Decimal(0), Decimal("0.3")]
    fast = trusted_cost_breakdown(*args, Decimal("0.001"), None, PricingStatus.PRICED, "v", "catalog", "m")
    slow = CostBreakdown(*args, input_price_per_1k=Decimal("0.001"), pricing_status=PricingStatus.PRICED,
                         price_version="v", price_source="catalog", priced_model="m")  # fmt: skip
    assert type(fast) is CostBreakdown and fast == slow and hash(fast) == hash(slow)
    assert fast.to_dict() == slow.to_dict()
    with pytest.raises(AttributeError):
        fast.total_cost = Decimal(1)  # type: ignore[misc]


def test_default_engine_reads_overrides_from_the_environment(tmp_path, monkeypatch):
    prices = tmp_path / "prices.toml"
    prices.write_text('[[price]]\nprovider = "openai"\nmodel = "gpt-4o"\ninput_mtok = "1"\noutput_mtok = "2"\n')
    monkeypatch.setenv("TOKENTRAIL_PRICES", str(prices))
    try:
        configure_prices(None)
        before = price_version()
        monkeypatch.setattr("tokentrail.pricing._default", None)
        usage = TokenUsage.build(input_tokens=1_000_000, output_tokens=1_000_000)
        cost = calculate_cost("openai", "gpt-4o", usage)
        assert cost.total_cost == 3 and cost.pricing_status is PricingStatus.OVERRIDE
        assert price_version() != before
    finally:
        configure_prices(None)


@pytest.mark.parametrize(
    "details",
    [
        {"input_audio_seconds": 1},
        {"audio_seconds": 0, "input_audio_seconds": 5},
        {"audio_seconds": 30},
        {"input_audio_seconds": 0},
    ],
)
def test_groq_whisper_minimum_billing_matches_genai_prices(details):
    # Found by the Hypothesis property: only `input_audio_seconds` reported must still be billed
    # at Groq's 10-second minimum, as genai-prices does.
    at = datetime(2024, 1, 1, tzinfo=UTC)
    ours = PriceEngine(supplement=False).calculate_cost(
        "groq", "whisper-large-v3", TokenUsage(input_tokens=0, details=details), at=at
    )
    theirs = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=0, **details),
        "whisper-large-v3",
        provider_id="groq",
        genai_request_timestamp=at,
    )
    assert ours.total_cost == theirs.total_price
