"""tokentrail's supplement: each entry is sourced, fills a gap the bundled catalog really has
(so a catalog upgrade that closes it fails here), and prices what it should."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from genai_prices import types as gp
from genai_prices.data import providers as bundled

from tokentrail.core import PricingStatus, TokenUsage, ValidationError
from tokentrail.pricing import PROVIDER_IDS, PriceEngine
from tokentrail.pricing.catalog import default_catalog
from tokentrail.pricing.overrides import parse_price_file
from tokentrail.pricing.supplement import load_supplement, supplement_bytes

AT = datetime(2026, 11, 2, 12, tzinfo=UTC)
CATALOG_FLEX_START = date(2026, 10, 12)


@pytest.fixture(scope="module")
def supplement():
    return load_supplement(default_catalog().registry)


@pytest.fixture(scope="module")
def with_supplement() -> PriceEngine:
    return PriceEngine()


@pytest.fixture(scope="module")
def bare() -> PriceEngine:
    return PriceEngine(supplement=False)


def openai_entry(name: str) -> gp.ModelInfo:
    provider = next(p for p in bundled if p.id == "openai")
    found = provider.find_model(name, all_providers=bundled)
    assert found is not None, name
    return found


def test_every_entry_has_a_source_and_a_note(supplement):
    entries = [*supplement.rules, *supplement.aliases]
    assert entries
    for entry in entries:
        assert entry.source and entry.note, entry.path
    with pytest.raises(ValidationError, match="source and a note"):
        parse_price_file(
            b'[[price]]\nprovider = "openai"\nmodel = "x"\ninput_mtok = "1"\nnote = "n"\n',
            origin="test", layer="supplement", registry=default_catalog().registry,
        )  # fmt: skip


def test_the_supplement_ships_as_package_data():
    assert b"[[price]]" in supplement_bytes()


def _audio_rules(supplement):
    return [r for r in supplement.rules if r.model_price is not None and r.model_price.input_audio_mtok is not None]


def test_audio_preview_models_lack_audio_rates_in_the_catalog(supplement):
    names = [name for rule in _audio_rules(supplement) for name in rule.matcher.exact_names()]
    assert "gpt-4o-audio-preview" in names and "gpt-4o-mini-audio-preview" in names
    for name in names:
        price = openai_entry(name).get_prices(AT)
        assert price.input_audio_mtok is None and price.output_audio_mtok is None, name


def test_audio_tokens_are_priced_at_audio_rates(with_supplement, bare):
    usage = TokenUsage.build(input_tokens=1000, output_tokens=500, audio_input_tokens=800, audio_output_tokens=400)
    cost = with_supplement.calculate_cost("openai", "gpt-4o-audio-preview-2025-06-03", usage, at=AT)
    million = Decimal(1_000_000)
    # PROVIDERS A.1: $40/M audio input vs $2.50 text; audio output $80 vs $10.
    assert cost.input_cost == (200 * Decimal("2.5") + 800 * 40) / million
    assert cost.output_cost == (100 * 10 + 400 * 80) / million
    assert cost.price_source == "supplement" and cost.pricing_status is PricingStatus.PRICED
    under = bare.calculate_cost("openai", "gpt-4o-audio-preview-2025-06-03", usage, at=AT)
    assert cost.total_cost > 4 * under.total_cost
    mini = with_supplement.calculate_cost("openai", "gpt-4o-mini-audio-preview", usage, at=AT)
    assert mini.input_cost == (200 * Decimal("0.15") + 800 * 10) / million


def _flex_rule(supplement):
    (rule,) = [r for r in supplement.rules if r.service_tier == "flex"]
    return rule


def test_flex_gap_is_real_and_flex_is_half_price_in_the_catalog(supplement):
    rule = _flex_rule(supplement)
    assert rule.end == datetime(2026, 10, 12, tzinfo=UTC) and rule.multiplier == Decimal("0.5")
    ids = set(rule.matcher.catalog_ids)
    models = {m.id: m for m in next(p for p in bundled if p.id == "openai").models}
    # Exactly the catalog models whose flex variant starts on 2026-10-12.
    dated = {
        m.id
        for m in models.values()
        for v in m.price_variants or ()
        if v.when == {"service_tier": "flex"} and v.constraint is not None
    }
    assert ids == dated
    for model_id in ids:
        flex = [v for v in models[model_id].price_variants or () if v.when == {"service_tier": "flex"}]
        assert all(v.constraint.start_date == CATALOG_FLEX_START for v in flex), model_id
        standard, half = models[model_id].get_prices(AT), models[model_id].get_prices(AT, {"service_tier": "flex"})
        for key in ("input_mtok", "output_mtok"):
            full, cut = getattr(standard, key), getattr(half, key)
            full = full.base if isinstance(full, gp.TieredPrices) else full
            cut = cut.base if isinstance(cut, gp.TieredPrices) else cut
            assert cut * 2 == full, (model_id, key)
        before = models[model_id].get_prices(datetime(2026, 10, 11, tzinfo=UTC), {"service_tier": "flex"})
        assert before == models[model_id].get_prices(datetime(2026, 10, 11, tzinfo=UTC)), model_id


def test_flex_before_the_catalog_dates(with_supplement, bare):
    usage = TokenUsage.build(input_tokens=20_000, output_tokens=3_000, cache_read_tokens=8_000)
    early = datetime(2025, 9, 1, tzinfo=UTC)
    standard = bare.calculate_cost("openai", "gpt-5-2025-08-07", usage, at=early)
    flex = with_supplement.calculate_cost("openai", "gpt-5-2025-08-07", usage, at=early, service_tier="flex")
    assert flex.total_cost * 2 == standard.total_cost and flex.price_source == "supplement"
    unsupplemented = bare.calculate_cost("openai", "gpt-5", usage, at=early, service_tier="flex")
    assert unsupplemented.total_cost == standard.total_cost
    # From the catalog's date on, its own variant applies.
    late = with_supplement.calculate_cost("openai", "gpt-5", usage, at=AT, service_tier="flex")
    assert late.price_source == "catalog"
    assert late.total_cost == bare.calculate_cost("openai", "gpt-5", usage, at=AT, service_tier="flex").total_cost
    # The multiplier follows the catalog's dated price (gpt-5.6-sol: $5/$30 until 2026-08-21).
    sol = with_supplement.calculate_cost("openai", "gpt-5.6-sol", usage, at=datetime(2026, 8, 1, tzinfo=UTC),
                                         service_tier="flex")  # fmt: skip
    listed = bare.calculate_cost("openai", "gpt-5.6-sol", usage, at=datetime(2026, 8, 1, tzinfo=UTC))
    assert sol.total_cost * 2 == listed.total_cost
    # Standard calls are untouched.
    assert with_supplement.calculate_cost("openai", "gpt-5", usage, at=early).total_cost == standard.total_cost


def test_mistral_large_latest_gap_and_alias(with_supplement, bare):
    provider = next(p for p in bundled if p.id == "mistral")
    latest = provider.find_model("mistral-large-latest")
    assert latest is not None and latest.id == "mistral-large"  # genai-prices: Large 2, always
    assert (latest.get_prices(AT).input_mtok, latest.get_prices(AT).output_mtok) == (Decimal(2), Decimal(6))
    usage = TokenUsage.build(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=500_000)
    before, after = (
        with_supplement.calculate_cost("mistral", "mistral-large-latest", usage, at=datetime(2025, 12, day, tzinfo=UTC))
        for day in (1, 2)
    )
    assert before.total_cost == Decimal(8) and before.priced_model == "mistral-large"
    # Large 3: $0.50 input, $1.50 output, $0.05 cache reads (PROVIDERS A.8).
    assert after.total_cost == Decimal("0.25") + Decimal("0.025") + Decimal("1.5")
    assert after.priced_model == "mistral-large-2512"
    assert bare.calculate_cost("mistral", "mistral-large-latest", usage, at=AT).total_cost == Decimal(8)


@pytest.mark.parametrize("provider", ["ollama", "vllm"])
def test_self_hosted_engines_are_free_not_unknown(with_supplement, bare, provider):
    assert PROVIDER_IDS[provider] is None  # no catalog provider: a real gap
    assert not any(p.id == provider for p in bundled)
    usage = TokenUsage.build(input_tokens=5000, output_tokens=800)
    cost = with_supplement.calculate_cost(provider, "llama3.2:3b", usage, at=AT)
    assert cost.total_cost == 0 and cost.pricing_status is PricingStatus.PRICED and cost.price_source == "supplement"
    assert bare.calculate_cost(provider, "llama3.2:3b", usage, at=AT).total_cost is None


def test_overrides_win_over_the_supplement(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[[price]]\nprovider = "ollama"\nmodel = "big:70b"\ninput_mtok = "0.10"\noutput_mtok = "0.10"\n')
    engine = PriceEngine(overrides=path)
    cost = engine.calculate_cost("ollama", "big:70b", TokenUsage.build(input_tokens=1_000_000, output_tokens=0), at=AT)
    assert cost.total_cost == Decimal("0.10") and cost.pricing_status is PricingStatus.OVERRIDE
    other = engine.calculate_cost("ollama", "small:1b", TokenUsage.build(input_tokens=10, output_tokens=0), at=AT)
    assert other.total_cost == 0 and other.price_source == "supplement"
