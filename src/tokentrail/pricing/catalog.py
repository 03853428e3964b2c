"""The price catalog: genai-prices' bundled data, read offline (its updater is never started).

This module maps tokentrail's provider names onto genai-prices provider ids and finds the
model entry that prices a (provider, model) pair, with genai-prices' own matching rules
(match clauses, provider fallbacks such as azure -> openai, compact-date normalisation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache
from importlib.metadata import version

from genai_prices import types as gp
from genai_prices.data import providers as _bundled_providers
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id
from genai_prices.data_units import unit_data
from genai_prices.units import UnitRegistry

GENAI_PRICES_VERSION = version("genai-prices")

# tokentrail's normalised provider names (core/names.py) -> genai-prices provider ids.
# None means the catalog has no such provider (self-hosted engines): only the overrides or
# the supplement can price those calls, so a local model is never billed at a cloud price.
PROVIDER_IDS: dict[str, str | None] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "mistral_ai": "mistral",
    "cohere": "cohere",
    "together": "together",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
    "fireworks": "fireworks",
    "ollama": None,
    "vllm": None,
}

# Providers whose catalog model ids legitimately contain a "vendor/" prefix.
_PREFIXED_IDS = frozenset({"openrouter", "together", "novita", "fireworks", "huggingface"})


@dataclass(frozen=True, slots=True)
class CatalogMatch:
    """The catalog entry pricing a call, and the genai-prices provider it was found under."""

    provider: gp.Provider
    model: gp.ModelInfo

    @property
    def borrowed(self) -> bool:
        """True when the model comes from a fallback provider (Azure pricing OpenAI models).

        genai-prices ignores the price context (service tier) for such models; so do we.
        """
        return not any(m is self.model for m in self.provider.models)


class Catalog:
    """Look-ups over one list of genai-prices providers (the bundled data by default)."""

    def __init__(self, providers: list[gp.Provider] | None = None) -> None:
        self.providers: list[gp.Provider] = list(_bundled_providers if providers is None else providers)
        # A private snapshot: its look-up caches are ours, and genai-prices' process-global
        # custom snapshot (written by UpdatePrices) is never consulted.
        self._snapshot = DataSnapshot(providers=self.providers, from_auto_update=False)
        self.registry = UnitRegistry(unit_data)

    def genai_provider_id(self, provider: str) -> str | None:
        """genai-prices provider id for a normalised provider name; None when it has none."""
        if provider in PROVIDER_IDS:
            return PROVIDER_IDS[provider]
        found = find_provider_by_id(self.providers, provider)
        return found.id if found is not None else None

    def find(self, provider: str, model: str) -> CatalogMatch | None:
        """The catalog entry for `model` called through `provider` (a normalised name).

        A provider genai-prices does not know falls back to its matching by model name; a
        self-hosted provider (PROVIDER_IDS value None) finds nothing.
        """
        ref = model.strip()
        if not ref:
            return None
        if provider in PROVIDER_IDS:
            provider_id = PROVIDER_IDS[provider]
            if provider_id is None:
                return None
        else:
            known = find_provider_by_id(self.providers, provider)
            provider_id = known.id if known is not None else None
        found = self._lookup(ref, provider_id)
        if found is None and "/" in ref and provider_id not in _PREFIXED_IDS:
            # A gateway-style "vendor/model" name: try the bare model name.
            found = self._lookup(ref.split("/", 1)[1], provider_id)
        return found

    def _lookup(self, ref: str, provider_id: str | None) -> CatalogMatch | None:
        try:
            provider, model = self._snapshot.find_provider_model(ref, None, provider_id, None)
        except LookupError:
            return None
        return CatalogMatch(provider, model)

    def entries(self, provider_id: str | None = None) -> Iterator[tuple[gp.Provider, gp.ModelInfo]]:
        """Every (provider, model) entry, optionally of one genai-prices provider."""
        for provider in self.providers:
            if provider_id is None or provider.id == provider_id:
                for model in provider.models:
                    yield provider, model


def start_of_day(value: date) -> datetime:
    """The instant a StartDateConstraint starts to hold (UTC midnight, as genai-prices compares dates)."""
    return datetime.combine(value, time(0), tzinfo=UTC)


def price_boundaries(model: gp.ModelInfo) -> tuple[tuple[datetime, ...], tuple[gp.TimeOfDateConstraint, ...]]:
    """Instants where a model's resolved price may change, and its time-of-day constraints.

    Between two consecutive boundaries (and for equal time-of-day flags) `get_prices` returns
    the same prices for any timestamp, which is what lets the engine compile once per period.
    """
    days: set[date] = set()
    daily: list[gp.TimeOfDateConstraint] = []
    constraints: list[object] = []
    if isinstance(model.prices, list):
        constraints.extend(c.constraint for c in model.prices)
    constraints.extend(v.constraint for v in model.price_variants or ())
    for constraint in constraints:
        if isinstance(constraint, gp.StartDateConstraint):
            days.add(constraint.start_date)
        elif isinstance(constraint, gp.TimeOfDateConstraint) and constraint not in daily:
            daily.append(constraint)
    return tuple(start_of_day(d) for d in sorted(days)), tuple(daily)


@cache
def default_catalog() -> Catalog:
    """The bundled catalog, loaded once per process."""
    return Catalog()


__all__ = [
    "GENAI_PRICES_VERSION",
    "PROVIDER_IDS",
    "Catalog",
    "CatalogMatch",
    "default_catalog",
    "price_boundaries",
    "start_of_day",
]
