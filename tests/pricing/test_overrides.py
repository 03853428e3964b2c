"""The overrides file: every feature of the format, layered over the catalog, and its errors."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tokentrail.core import CostBreakdown, PricingStatus, TokenUsage, Units, ValidationError
from tokentrail.pricing import PriceEngine, configure_prices

AT = datetime(2026, 11, 2, 12, tzinfo=UTC)
MILLION = TokenUsage.build(input_tokens=1_000_000, output_tokens=1_000_000)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "pricing.md"


def engine_with(tmp_path: Path, text: str, **kwargs) -> PriceEngine:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return PriceEngine(overrides=path, **kwargs)


def same_price(a: CostBreakdown, b: CostBreakdown) -> bool:
    """Equal apart from price_version (which names the overrides file)."""
    return replace(a, price_version=None) == replace(b, price_version=None)


def docs_example() -> str:
    """The "Full example" TOML block of docs/pricing.md."""
    doc = DOCS.read_text()
    section = doc[doc.index("### Full example") :]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> PriceEngine:
    path = tmp_path_factory.mktemp("prices") / "prices.toml"
    path.write_text(docs_example())
    return PriceEngine(overrides=path)


@pytest.fixture(scope="module")
def catalog() -> PriceEngine:
    return PriceEngine()


def test_docs_example_parses_with_every_entry(example):
    assert example.overrides is not None
    assert len(example.overrides.rules) == 8 and len(example.overrides.aliases) == 3


def test_discount_scales_the_catalog_price(example, catalog):
    usage = TokenUsage.build(input_tokens=5000, output_tokens=700, cache_read_tokens=1000, cache_write_tokens=2000)
    ours = example.calculate_cost("anthropic", "claude-sonnet-4-5", usage, at=AT)
    listed = catalog.calculate_cost("anthropic", "claude-sonnet-4-5", usage, at=AT)
    assert ours.total_cost == listed.total_cost * Decimal("0.85")
    assert ours.cache_write_cost == listed.cache_write_cost * Decimal("0.85")
    assert ours.pricing_status is PricingStatus.OVERRIDE and ours.price_source == "override"
    assert ours.priced_model == "claude-sonnet-4-5"
    assert ours.input_price_per_1k == listed.input_price_per_1k * Decimal("0.85")
    # The discount follows the catalog's long-context tier too.
    long = TokenUsage.build(input_tokens=300_000, output_tokens=10)
    assert example.calculate_cost("anthropic", "claude-sonnet-4-5", long, at=AT).total_cost == (
        catalog.calculate_cost("anthropic", "claude-sonnet-4-5", long, at=AT).total_cost * Decimal("0.85")
    )


def test_dated_override_applies_only_in_its_range(example, catalog):
    during = example.calculate_cost("openai", "gpt-4o-2024-08-06", MILLION, at=datetime(2025, 6, 1, tzinfo=UTC))
    assert during.total_cost == Decimal(10) and during.pricing_status is PricingStatus.OVERRIDE
    for outside in (datetime(2024, 12, 31, 23, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)):
        cost = example.calculate_cost("openai", "gpt-4o-2024-08-06", MILLION, at=outside)
        assert same_price(cost, catalog.calculate_cost("openai", "gpt-4o-2024-08-06", MILLION, at=outside))
        assert cost.pricing_status is PricingStatus.PRICED


def test_override_tiers_are_cliffs(example):
    name = "ft:gpt-4o-mini:acme:support-v3:abc123"
    at_tier = example.calculate_cost("openai", name, TokenUsage.build(input_tokens=128_000, output_tokens=0), at=AT)
    above = example.calculate_cost("openai", name, TokenUsage.build(input_tokens=128_001, output_tokens=0), at=AT)
    assert at_tier.total_cost == Decimal("0.30") * 128_000 / 1_000_000
    assert above.total_cost == Decimal("0.60") * 128_001 / 1_000_000
    assert above.priced_model == "acme fine-tune"


def test_azure_deployment_alias_and_uplift(example, catalog):
    usage = TokenUsage.build(input_tokens=1200, output_tokens=300, cache_read_tokens=200)
    openai_price = catalog.calculate_cost("openai", "gpt-4o", usage, at=AT)
    deploy = example.calculate_cost("azure", "my-gpt4o-deploy", usage, at=AT)
    assert deploy.total_cost == catalog.calculate_cost("azure", "gpt-4o", usage, at=AT).total_cost
    assert deploy.priced_model == "gpt-4o" and deploy.pricing_status is PricingStatus.PRICED
    zone = example.calculate_cost("azure_openai", "eu-gpt4o-dz", usage, at=AT)
    assert zone.total_cost == openai_price.total_cost * Decimal("1.1")
    assert zone.pricing_status is PricingStatus.OVERRIDE
    # Without the file, the deployment name is an unknown model.
    assert catalog.calculate_cost("azure", "my-gpt4o-deploy", usage, at=AT).total_cost is None


def test_bedrock_application_profile_alias(example):
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    cost = example.calculate_cost("aws.bedrock", arn, MILLION, at=AT)
    assert (cost.input_cost, cost.output_cost) == (Decimal("3.3"), Decimal("16.5"))
    assert cost.priced_model == "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_latest_alias_follows_the_request_date(example, catalog):
    usage = TokenUsage.build(input_tokens=10_000, output_tokens=1000)
    before = example.calculate_cost("mistral", "mistral-medium-latest", usage, at=datetime(2026, 3, 1, tzinfo=UTC))
    assert before.priced_model == "mistral-medium-3-1"
    assert before.total_cost == catalog.calculate_cost("mistral", "mistral-medium-2508", usage, at=AT).total_cost
    after = example.calculate_cost("mistral", "mistral-medium-latest", usage, at=datetime(2026, 7, 1, tzinfo=UTC))
    assert after.priced_model == "mistral-medium-latest"


def test_self_hosted_models_are_explicitly_free_not_unknown(example):
    cost = example.calculate_cost("vllm", "meta-llama/Llama-3.3-70B-Instruct", MILLION, at=AT)
    assert cost.total_cost == 0 and cost.pricing_status is PricingStatus.OVERRIDE
    assert cost.reason is None


def test_per_unit_prices(example, tmp_path):
    ocr = example.calculate_cost("mistral", "acme-ocr-v2", None, at=AT, units=Units(pages=120, images=3))
    assert ocr.other_cost == ocr.total_cost == Decimal("0.0015") * 120 + Decimal("0.002") * 3
    whisper = example.calculate_cost("openai", "whisper-1", TokenUsage(), at=AT, units=Units(seconds=95.5))
    assert whisper.total_cost == Decimal("0.0001") * Decimal("95.5")
    embed = example.calculate_cost("cohere", "embed-v4.0", TokenUsage.build(input_tokens=2500), at=AT)
    assert embed.input_cost == Decimal("0.00012") * Decimal("2.5")
    engine = engine_with(tmp_path, """
[[price]]
provider = "perplexity"
model = "sonar-x"
input_mtok = "1"
output_mtok = "1"
per_request = "0.005"
per_search = "0.008"
per_character = "0.00001"
""")  # fmt: skip
    cost = engine.calculate_cost("perplexity", "sonar-x", TokenUsage.build(input_tokens=1000, output_tokens=1000),
                                 at=AT, units=Units(searches=2, characters=100))  # fmt: skip
    assert cost.other_cost == Decimal("0.005") + 2 * Decimal("0.008") + 100 * Decimal("0.00001")
    assert cost.total_cost == cost.other_cost + Decimal("0.002")
    several = engine.calculate_cost("perplexity", "sonar-x", TokenUsage(), at=AT, units=Units(requests=3))
    assert several.total_cost == 3 * Decimal("0.005")


def test_tier_specific_override_and_base_model(tmp_path, catalog):
    engine = engine_with(tmp_path, """
[[price]]
provider = "openai"
catalog_model = "gpt-5"
service_tier = "priority"
multiplier = "1.5"

[[price]]
provider = "openai"
model = "my-mini"
base_model = "gpt-5-mini"
discount = "0.2"
""")  # fmt: skip
    usage = TokenUsage.build(input_tokens=1000, output_tokens=1000)
    standard = catalog.calculate_cost("openai", "gpt-5-2025-08-07", usage, at=AT)
    assert same_price(engine.calculate_cost("openai", "gpt-5-2025-08-07", usage, at=AT), standard)
    priority = engine.calculate_cost("openai", "gpt-5-2025-08-07", usage, at=AT, service_tier="priority")
    listed_priority = catalog.calculate_cost("openai", "gpt-5", usage, at=AT, service_tier="priority")
    assert priority.total_cost == listed_priority.total_cost * Decimal("1.5")
    mini = engine.calculate_cost("openai", "my-mini", usage, at=AT)
    assert mini.total_cost == catalog.calculate_cost("openai", "gpt-5-mini", usage, at=AT).total_cost * Decimal("0.8")


def test_price_version_changes_with_the_overrides(tmp_path):
    one = engine_with(tmp_path, '[[price]]\nprovider = "openai"\nmodel = "x"\ninput_mtok = "1"\n')
    same = engine_with(tmp_path, '[[price]]\nprovider = "openai"\nmodel = "x"\ninput_mtok = "1"\n')
    other = engine_with(tmp_path, '[[price]]\nprovider = "openai"\nmodel = "x"\ninput_mtok = "2"\n')
    assert one.price_version == same.price_version != other.price_version
    assert "overrides=none" in PriceEngine().price_version
    assert "supplement=off" in PriceEngine(supplement=False).price_version
    cost = other.calculate_cost("openai", "x", TokenUsage.build(input_tokens=10), at=AT)
    assert cost.price_version == other.price_version


def test_alias_cycles_do_not_loop(tmp_path):
    engine = engine_with(tmp_path, """
[[alias]]
provider = "openai"
model = "a"
target = "b"

[[alias]]
provider = "openai"
model = "b"
target = "a"
""")  # fmt: skip
    assert engine.calculate_cost("openai", "a", TokenUsage.build(input_tokens=1), at=AT).total_cost is None
    self_based = engine_with(tmp_path, "[[price]]\nprovider = 'openai'\nmodel = 'gpt-4o'\nbase_model = 'gpt-4o'\n"
                             "multiplier = '2'\n")  # fmt: skip
    cost = self_based.calculate_cost("openai", "gpt-4o", TokenUsage.build(input_tokens=1), at=AT)
    assert cost.price_source == "catalog"  # the rule has no base to scale; the catalog prices it


def test_a_bad_file_keeps_the_previous_prices(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[[price]]\nprovider = "openai"\nmodel = "x"\ninput_mtok = "1"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[[price]]\nprovider = "openai"\nmodel = "x"\ninput_mtok = "-1"\n')
    try:
        installed = configure_prices(good)
        with pytest.raises(ValidationError):
            configure_prices(bad)
        from tokentrail.pricing import default_engine

        assert default_engine() is installed
    finally:
        configure_prices(None)


BAD_FILES = [
    ("[[price]]\nmodel = 'x'\ninput_mtok = '1'\n", "price[0].provider", "is required"),
    ("[[price]]\nprovider = 'openai'\ninput_mtok = '1'\n", "price[0]", "exactly one of model"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\nmodel_prefix = 'y'\ninput_mtok = '1'\n", "price[0]", "exactly one"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = '-1'\n", "price[0].input_mtok", "non-negative"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = 'abc'\n", "price[0].input_mtok", "not a decimal"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = true\n", "price[0].input_mtok", "decimal number"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninptu_mtok = '1'\n", "price[0].inptu_mtok", "not a [[price]] key"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\n", "price[0]", "gives no price"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = '1'\nmultiplier = '2'\n", "price[0]", "both prices"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\nmultiplier = '1'\ndiscount = '5%'\n", "price[0]", "both multiplier"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ndiscount = '150%'\n", "price[0].discount", "at most 100%"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ncache_read_mtok = '1'\n", "price[0]", "not a coherent price"),
    ("[[price]]\nprovider = 'openai'\nmodel_regex = '('\ninput_mtok = '1'\n", "price[0].model_regex", "regular expr"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = '1'\nstart = 'soon'\n", "price[0].start", "date"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = '1'\nstart = 2025-02-01\nend = 2025-01-01\n",
     "price[0].end", "after start"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = '1'\nservice_tier = 'turbo'\n",
     "price[0].service_tier", "must be one of"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = '1'\n[[price.tiers]]\nabove = -5\ninput_mtok = '2'\n",
     "price[0].tiers[0].above", "non-negative integer"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = '1'\n[[price.tiers]]\nabove = 5\noutput_mtok = '2'\n",
     "price[0].tiers[0].output_mtok", "also prices"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\nper_page = '1'\ninput_document_kpages = '1000'\n",
     "price[0].input_document_kpages", "second time"),
    ("[[price]]\nprovider = 'openai'\nmodel = 'x'\nbase_model = 'y'\ninput_mtok = '1'\n", "price[0].base_model",
     "only used with multiplier"),
    ("[[alias]]\nprovider = 'azure'\nmodel = 'x'\n", "alias[0].target", "is required"),
    ("[[alias]]\nprovider = '*'\nmodel = 'x'\ntarget = 'y'\n", "alias[0].target_provider", "is required"),
    ("[[alias]]\nprovider = 'azure'\nmodel = 'x'\ntarget = 'y'\ninput_mtok = '1'\n", "alias[0].input_mtok",
     "not a [[alias]] key"),
    ("[[prices]]\nprovider = 'openai'\n", "prices", "not a price file section"),
    ("price = 3\n", "price", "array of tables"),
    ("version = 2\n", "version", "must be 1"),
    ("[[price]\n", "prices", "not valid TOML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "field", "reason"), BAD_FILES, ids=[f for _, f, _ in BAD_FILES])
def test_bad_files_name_the_key_and_the_reason(tmp_path, text, field, reason):
    with pytest.raises(ValidationError) as info:
        engine_with(tmp_path, text)
    assert info.value.field == field
    assert reason in info.value.reason
    assert "prices.toml" in str(info.value)


def test_missing_file_is_a_validation_error(tmp_path):
    with pytest.raises(ValidationError, match="cannot read price file"):
        PriceEngine(overrides=tmp_path / "absent.toml")


def test_numbers_are_accepted_and_read_exactly(tmp_path):
    engine = engine_with(tmp_path, "[[price]]\nprovider = 'openai'\nmodel = 'x'\ninput_mtok = 0.1\noutput_mtok = 3\n")
    cost = engine.calculate_cost("openai", "x", MILLION, at=AT)
    assert cost.input_cost == Decimal("0.1") and cost.output_cost == Decimal(3)
