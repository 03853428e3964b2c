"""Exact LLM call pricing: genai-prices catalog + tokentrail's supplement + user overrides.

`calculate_cost` prices one call with the default engine; `configure_prices` installs an
overrides file into it (`TOKENTRAIL_PRICES` is read on first use otherwise). See
docs/pricing.md.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

from tokentrail.core.cost import CostBreakdown
from tokentrail.core.usage import TokenUsage, Units
from tokentrail.pricing.catalog import GENAI_PRICES_VERSION, PROVIDER_IDS, Catalog
from tokentrail.pricing.engine import (
    NO_USAGE,
    PRICE_CONTEXTS,
    PriceEngine,
    apply_provider_reported,
    price_context,
)
from tokentrail.pricing.overrides import SERVICE_TIERS, normalize_tier
from tokentrail.pricing.search import PriceListing, search_catalog
from tokentrail.pricing.usage_keys import usage_values

PRICES_ENV = "TOKENTRAIL_PRICES"

_default: PriceEngine | None = None
_lock = threading.Lock()


def default_engine() -> PriceEngine:
    """The engine `calculate_cost` uses; built on first use with `TOKENTRAIL_PRICES`, if set."""
    global _default
    engine = _default
    if engine is None:
        with _lock:
            if _default is None:
                _default = PriceEngine(overrides=os.environ.get(PRICES_ENV) or None)
            engine = _default
    return engine


def configure_prices(path: str | Path | None) -> PriceEngine:
    """Install an overrides file (None: none) into the default engine and return it.

    The file is read and validated first, so a bad file raises ValidationError and leaves
    the previous prices in place.
    """
    global _default
    engine = PriceEngine(overrides=path)
    _default = engine
    return engine


# The name the SDK's configure(prices=...) uses.
set_overrides_path = configure_prices


def calculate_cost(
    provider: str,
    model: str,
    usage: TokenUsage | None,
    *,
    at: datetime | None = None,
    service_tier: str | None = None,
    units: Units | None = None,
) -> CostBreakdown:
    """Exact cost of one call, split into uncached input, cache read, cache write, output and
    per-unit (other) buckets.

    `at` picks the prices in force (default now, UTC); `service_tier` (flex, priority, batch,
    fast) selects the catalog's variant; `units` prices pages, images, characters, seconds,
    requests and searches where a price exists. An unknown model, or no usage at all, gives
    `pricing_status` "unpriced" with a `reason` and no total (never $0).
    """
    engine = _default or default_engine()
    return engine.calculate_cost(provider, model, usage, at=at, service_tier=service_tier, units=units)


def search_prices(text: str, provider: str | None = None) -> list[PriceListing]:
    """Catalog (and supplement/override) models matching `text`, with current prices per Mtok."""
    engine = _default or default_engine()
    return search_catalog(engine.catalog, engine.layers, text, provider)


def price_version() -> str:
    """Identifies the catalog version, the supplement and the overrides the default engine uses."""
    return (_default or default_engine()).price_version


__all__ = [
    "GENAI_PRICES_VERSION",
    "NO_USAGE",
    "PRICES_ENV",
    "PRICE_CONTEXTS",
    "PROVIDER_IDS",
    "SERVICE_TIERS",
    "Catalog",
    "PriceEngine",
    "PriceListing",
    "apply_provider_reported",
    "calculate_cost",
    "configure_prices",
    "default_engine",
    "normalize_tier",
    "price_context",
    "price_version",
    "search_prices",
    "set_overrides_path",
    "usage_values",
]
