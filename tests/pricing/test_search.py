"""Catalog search for `tokentrail prices search`."""

from __future__ import annotations

import json
from decimal import Decimal

from tokentrail.pricing import PriceEngine, search_prices
from tokentrail.pricing.search import search_catalog


def test_search_finds_models_with_current_prices():
    found = search_prices("gpt-4o-mini", provider="openai")
    assert found and found[0].model == "gpt-4o-mini"  # the exact id first
    first = found[0]
    assert first.provider == "openai" and first.source == "catalog"
    assert first.input_mtok == Decimal("0.15") and first.output_mtok == Decimal("0.6")
    assert first.cache_read_mtok == Decimal("0.075")
    assert all("gpt-4o-mini" in m.model.lower() or "gpt-4o-mini" in (m.name or "").lower() for m in found)
    json.dumps([m.to_dict() for m in found])  # JSON-ready: decimals as strings


def test_search_matches_snapshot_names_and_filters_by_provider_spelling():
    assert any(m.model == "gpt-4o" for m in search_prices("gpt-4o-2024-08-06"))
    gemini = search_prices("gemini-2.5-pro", provider="gemini")
    assert gemini and {m.provider for m in gemini} == {"google"}
    assert any("200,000" in (m.notes or "") for m in gemini)  # the long-context tier is noted
    assert not search_prices("gemini-2.5-pro", provider="anthropic")
    assert not search_prices("no-such-model-anywhere")


def test_search_lists_supplement_and_override_prices(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[[price]]\nprovider = "openai"\nmodel = "acme-ft-1"\ninput_mtok = "3"\noutput_mtok = "6"\n')
    engine = PriceEngine(overrides=path)
    found = search_catalog(engine.catalog, engine.layers, "acme-ft")
    assert [(m.model, m.source, m.input_mtok) for m in found] == [("acme-ft-1", "override", Decimal(3))]
    audio = search_catalog(engine.catalog, engine.layers, "gpt-4o-audio-preview")
    assert {"supplement", "catalog"} <= {m.source for m in audio}
