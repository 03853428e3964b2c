"""Catalog search for `tokentrail prices search`: models matching a text, with their prices now."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import types as gp

from tokentrail.core.names import normalize_provider
from tokentrail.pricing.catalog import Catalog
from tokentrail.pricing.overrides import ANY, PriceFile


@dataclass(frozen=True, slots=True)
class PriceListing:
    """One model's current standard prices, USD per million tokens (None: not priced)."""

    provider: str  # genai-prices provider id, or the provider an override/supplement entry names
    model: str
    name: str | None
    input_mtok: Decimal | None
    output_mtok: Decimal | None
    cache_read_mtok: Decimal | None
    cache_write_mtok: Decimal | None
    source: str  # "catalog", "supplement" or "override"
    notes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Decimal) else value
        return out


def _rate(model_price: gp.ModelPrice, key: str) -> Decimal | None:
    value = getattr(model_price, key, None)
    if isinstance(value, gp.TieredPrices):
        return value.base
    return value if isinstance(value, Decimal) else None


def _listing(
    provider: str, model: str, name: str | None, price: gp.ModelPrice, source: str, notes: str | None
) -> PriceListing:
    return PriceListing(
        provider=provider,
        model=model,
        name=name,
        input_mtok=_rate(price, "input_mtok"),
        output_mtok=_rate(price, "output_mtok"),
        cache_read_mtok=_rate(price, "cache_read_mtok"),
        cache_write_mtok=_rate(price, "cache_write_mtok"),
        source=source,
        notes=notes,
    )


def _notes(model: gp.ModelInfo, model_price: gp.ModelPrice) -> str | None:
    notes = []
    starts = sorted({t.start for v in model_price.__dict__.values() if isinstance(v, gp.TieredPrices) for t in v.tiers})
    if starts:
        notes.append("higher rate above " + ", ".join(f"{s:,}" for s in starts) + " input tokens")
    if isinstance(model.prices, list) and len(model.prices) > 1:
        notes.append("price changed over time")
    if model.price_variants:
        tiers = sorted({value for v in model.price_variants if v.prices.__dict__ for value in v.when.values()})
        if tiers:
            notes.append("tiers: " + ", ".join(tiers))
    if model.deprecated:
        notes.append("deprecated")
    return "; ".join(notes) or None


def search_catalog(
    catalog: Catalog,
    layers: tuple[PriceFile, ...],
    text: str,
    provider: str | None = None,
    *,
    at: datetime | None = None,
) -> list[PriceListing]:
    """Models whose id or name contains `text` (or whose match rules accept it), best first."""
    needle = text.strip().lower()
    at = at or datetime.now(UTC)
    wanted: set[str] | None = None
    if provider:
        normalized = normalize_provider(provider)
        wanted = {normalized, provider.strip().lower()}
        genai_id = catalog.genai_provider_id(normalized)
        if genai_id is not None:
            wanted.add(genai_id)
    found: list[PriceListing] = []
    for layer in layers:
        for rule in layer.rules:
            if rule.model_price is None:
                continue
            if wanted is not None and rule.provider not in wanted and rule.provider != ANY:
                continue
            for name in rule.matcher.exact_names():
                if needle in name:
                    found.append(_listing(rule.provider, name, rule.label, rule.model_price, rule.layer, rule.note))
    for prov, model in catalog.entries():
        if wanted is not None and prov.id not in wanted:
            continue
        name = model.name or ""
        if needle in model.id.lower() or needle in name.lower() or (needle and model.is_match(needle)):
            price = model.get_prices(at)
            found.append(_listing(prov.id, model.id, model.name, price, "catalog", _notes(model, price)))
    # Exact id matches first, then ids starting with the text, then the rest.
    found.sort(key=lambda p: (p.model.lower() != needle, not p.model.lower().startswith(needle), p.provider, p.model))
    return found


__all__ = ["PriceListing", "search_catalog"]
