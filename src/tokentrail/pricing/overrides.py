"""Price files: the user's overrides and tokentrail's own supplement share one TOML format.

    [[price]]                     # a price for matching calls (replaces lower layers)
    provider = "openai"           # any spelling tokentrail accepts, or "*"
    model = "gpt-4o"              # or model = [..], model_prefix = "..", model_regex = ".."
    input_mtok = "2.25"           # USD per million tokens; any genai-prices price key works
    start = 2025-01-01            # optional, inclusive (UTC); end = .. exclusive
    service_tier = "flex"         # optional: only calls on this tier

    [[alias]]                     # a name that is priced as another model
    provider = "azure"
    model = "my-gpt4o-deploy"
    target = "gpt-4o"

See docs/pricing.md for every key. Errors name the key path (`price[2].input_mtok`).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from genai_prices import types as gp
from genai_prices.units import UnitRegistry
from genai_prices.validation import validate_model_price

from tokentrail.core.errors import ValidationError
from tokentrail.core.names import normalize_provider

ANY = "*"

# Service tiers as callers and providers spell them -> the tier key prices are selected by.
# None is the standard tier.
SERVICE_TIERS: dict[str, str | None] = {
    "flex": "flex",
    "priority": "priority",
    "fast": "fast",
    "batch": "batch",
    "standard": None,
    "default": None,
    "auto": None,
    "scale": None,
    "on_demand": None,
}

# Per-unit keys (USD per unit) -> (genai-prices price key, its `per`), or IMAGES for our own.
UNIT_PRICE_KEYS: dict[str, tuple[str, int] | None] = {
    "per_page": ("input_document_kpages", 1000),
    "per_character": ("input_mchars", 1_000_000),
    "per_second": ("audio_hours", 3600),
    "per_search": ("web_searches_kcount", 1000),
    "per_request": ("requests_kcount", 1000),
    "per_image": None,
}

_MATCH_KEYS = ("model", "model_prefix", "model_regex", "catalog_model")
_COMMON_KEYS = {*_MATCH_KEYS, "provider", "start", "end", "source", "note"}
_PRICE_KEYS = _COMMON_KEYS | {"service_tier", "name", "multiplier", "discount", "base_provider", "base_model", "tiers"}
_ALIAS_KEYS = _COMMON_KEYS | {"target", "target_provider"}


def normalize_tier(value: str | None) -> str | None:
    """The tier key of a reported or requested service tier; unknown tiers price as standard."""
    if not value:
        return None
    return SERVICE_TIERS.get(value.strip().lower())


@dataclass(frozen=True, slots=True)
class ModelMatcher:
    """Which model names an entry applies to (case-insensitive)."""

    names: frozenset[str] = frozenset()
    prefix: str | None = None
    regex: re.Pattern[str] | None = None
    # Catalog entry ids: matches every name the catalog prices as one of these entries
    # (snapshots, aliases), which exact names cannot enumerate.
    catalog_ids: frozenset[str] = frozenset()

    def matches(self, model: str, catalog_id: str | None) -> bool:
        """`model` is already lower-cased and stripped; `catalog_id` is the catalog's entry, if any."""
        if self.names:
            return model in self.names
        if self.prefix is not None:
            return model.startswith(self.prefix)
        if self.regex is not None:
            return self.regex.search(model) is not None
        return catalog_id is not None and catalog_id in self.catalog_ids

    def exact_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.names))


@dataclass(frozen=True, slots=True)
class Entry:
    """What [[price]] and [[alias]] entries share: where they apply."""

    layer: str  # "override" or "supplement"
    path: str  # "price[3]", for messages
    provider: str  # normalised, or ANY
    matcher: ModelMatcher
    start: datetime | None
    end: datetime | None
    source: str | None
    note: str | None

    def applies_to(self, provider: str, model: str, catalog_id: str | None) -> bool:
        return (self.provider == ANY or self.provider == provider) and self.matcher.matches(model, catalog_id)

    def in_force(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


@dataclass(frozen=True, slots=True)
class PriceRule(Entry):
    """A [[price]] entry: explicit prices, or a multiplier on the price of the layers below."""

    service_tier: str | None = None  # ANY when the entry names no tier
    label: str | None = None  # reported as priced_model; the called name when None
    model_price: gp.ModelPrice | None = None
    image_price: Decimal | None = None
    multiplier: Decimal | None = None
    base_provider: str | None = None
    base_model: str | None = None


@dataclass(frozen=True, slots=True)
class AliasRule(Entry):
    """An [[alias]] entry: calls named `model` are priced as `target_provider`/`target`."""

    target: str = ""
    target_provider: str | None = None


@dataclass(frozen=True, slots=True)
class PriceFile:
    """A parsed price file and the digest of its bytes (part of price_version)."""

    origin: str
    digest: str
    rules: tuple[PriceRule, ...]
    aliases: tuple[AliasRule, ...]


def load_price_file(path: str | Path, *, layer: str = "override", registry: UnitRegistry) -> PriceFile:
    """Read and validate a price file; ValidationError names the key path and the reason."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ValidationError("prices", f"cannot read price file {str(file)!r}: {exc.strerror or exc}") from None
    return parse_price_file(raw, origin=str(file), layer=layer, registry=registry)


def parse_price_file(raw: bytes, *, origin: str, layer: str, registry: UnitRegistry) -> PriceFile:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError("prices", f"{origin} is not valid TOML: {exc}") from None
    parser = _Parser(origin, layer, registry)
    for key in data:
        if key not in ("price", "alias", "version"):
            parser.fail(key, "is not a price file section (use [[price]] or [[alias]])")
    if data.get("version", 1) != 1:
        parser.fail("version", "must be 1")
    rules = tuple(parser.price(i, item) for i, item in enumerate(parser.tables("price", data.get("price", []))))
    aliases = tuple(parser.alias(i, item) for i, item in enumerate(parser.tables("alias", data.get("alias", []))))
    return PriceFile(origin, hashlib.sha256(raw).hexdigest()[:12], rules, aliases)


class _Parser:
    def __init__(self, origin: str, layer: str, registry: UnitRegistry) -> None:
        self.origin = origin
        self.layer = layer
        self.registry = registry

    def fail(self, path: str, reason: str) -> NoReturn:
        raise ValidationError(path, f"{reason} (in {self.origin})")

    def tables(self, name: str, value: object) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            self.fail(name, f"must be an array of tables ([[{name}]])")
        return value  # type: ignore[return-value]

    def text(self, path: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty string")
        return value.strip()  # type: ignore[union-attr]

    def money(self, path: str, value: object) -> Decimal:
        """A non-negative decimal: a string ("2.50") keeps it exact; numbers are accepted."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(path, f'must be a decimal number (a string such as "2.50"), got {type(value).__name__}')
        try:
            result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)  # type: ignore[arg-type]
        except InvalidOperation:
            self.fail(path, f"{value!r} is not a decimal number")
        if not result.is_finite() or result < 0:
            self.fail(path, f"must be a finite, non-negative amount, got {value!r}")
        return result

    def when(self, path: str, value: object) -> datetime:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=UTC)
        if isinstance(value, str):
            try:
                return self.when(path, datetime.fromisoformat(value))
            except ValueError:
                pass
        self.fail(path, f"must be a date (2025-01-31) or date-time, got {value!r}")

    def entry(self, kind: str, i: int, item: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
        path = f"{kind}[{i}]"
        for key in item:
            if key not in allowed and not (kind == "price" and self._is_price_key(key)):
                self.fail(f"{path}.{key}", f"is not a [[{kind}]] key")
        if "provider" not in item:
            self.fail(f"{path}.provider", 'is required (a provider name, or "*" for any)')
        provider = self.text(f"{path}.provider", item["provider"])
        chosen = [k for k in _MATCH_KEYS if k in item]
        if len(chosen) != 1:
            self.fail(path, f"needs exactly one of {', '.join(_MATCH_KEYS)}")
        key = chosen[0]
        value = item[key]
        if key in ("model", "catalog_model"):
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names:
                self.fail(f"{path}.{key}", "must be a model name or a non-empty list of names")
            lowered = frozenset(self.text(f"{path}.{key}", n).lower() for n in names)
            matcher = ModelMatcher(names=lowered) if key == "model" else ModelMatcher(catalog_ids=lowered)
        elif key == "model_prefix":
            matcher = ModelMatcher(prefix=self.text(f"{path}.model_prefix", value).lower())
        else:
            try:
                matcher = ModelMatcher(regex=re.compile(self.text(f"{path}.model_regex", value), re.IGNORECASE))
            except re.error as exc:
                self.fail(f"{path}.model_regex", f"is not a valid regular expression: {exc}")
        start = self.when(f"{path}.start", item["start"]) if "start" in item else None
        end = self.when(f"{path}.end", item["end"]) if "end" in item else None
        if start is not None and end is not None and end <= start:
            self.fail(f"{path}.end", "must be after start")
        source = self.text(f"{path}.source", item["source"]) if "source" in item else None
        note = self.text(f"{path}.note", item["note"]) if "note" in item else None
        if self.layer == "supplement" and (source is None or note is None):
            self.fail(path, "supplement entries need a source and a note")
        return {
            "layer": self.layer,
            "path": path,
            "provider": ANY if provider == ANY else normalize_provider(provider),
            "matcher": matcher,
            "start": start,
            "end": end,
            "source": source,
            "note": note,
        }

    def alias(self, i: int, item: Mapping[str, Any]) -> AliasRule:
        common = self.entry("alias", i, item, _ALIAS_KEYS)
        if "target" not in item:
            self.fail(f"alias[{i}].target", "is required (the model to price the call as)")
        target = self.text(f"alias[{i}].target", item["target"])
        target_provider = None
        if "target_provider" in item:
            target_provider = normalize_provider(self.text(f"alias[{i}].target_provider", item["target_provider"]))
        elif common["provider"] == ANY:
            self.fail(f"alias[{i}].target_provider", 'is required when provider is "*"')
        return AliasRule(**common, target=target, target_provider=target_provider)

    def _is_price_key(self, key: str) -> bool:
        if key in UNIT_PRICE_KEYS:
            return True
        if key.endswith("_ktok"):
            key = key[: -len("_ktok")] + "_mtok"
        try:
            self.registry.unit_for_price_key(key)
        except KeyError:
            return False
        return True

    def price(self, i: int, item: Mapping[str, Any]) -> PriceRule:
        path = f"price[{i}]"
        common = self.entry("price", i, item, _PRICE_KEYS)
        tier: str | None = ANY
        if "service_tier" in item:
            spelled = self.text(f"{path}.service_tier", item["service_tier"]).lower()
            if spelled not in SERVICE_TIERS:
                self.fail(f"{path}.service_tier", f"must be one of {', '.join(sorted(SERVICE_TIERS))}")
            tier = SERVICE_TIERS[spelled]
        label = self.text(f"{path}.name", item["name"]) if "name" in item else None
        prices, image_price = self.prices(path, item)
        multiplier = self.multiplier(path, item)
        base_provider = base_model = None
        if "base_model" in item or "base_provider" in item:
            if multiplier is None:
                self.fail(f"{path}.base_model", "is only used with multiplier or discount")
            if "base_model" not in item:
                self.fail(f"{path}.base_model", "is required with base_provider")
            base_model = self.text(f"{path}.base_model", item["base_model"])
            if "base_provider" in item:
                base_provider = normalize_provider(self.text(f"{path}.base_provider", item["base_provider"]))
            if base_provider is None and common["provider"] == ANY:
                self.fail(f"{path}.base_provider", 'is required when provider is "*"')
        if multiplier is not None and (prices or image_price is not None or "tiers" in item):
            self.fail(path, "gives both prices and a multiplier/discount; use one")
        if multiplier is None and not prices and image_price is None:
            self.fail(path, "gives no price: add e.g. input_mtok/output_mtok, a per_* unit price, or a multiplier")
        model_price = None
        if multiplier is None:
            if "tiers" in item:
                self.tiers(path, item["tiers"], prices)
            try:
                validate_model_price(set(prices), self.registry)
            except ValueError as exc:
                self.fail(path, f"is not a coherent price: {exc}")
            model_price = gp.ModelPrice(**prices)
        return PriceRule(
            **common,
            service_tier=tier,
            label=label,
            model_price=model_price,
            image_price=image_price,
            multiplier=multiplier,
            base_provider=base_provider,
            base_model=base_model,
        )

    def prices(self, path: str, item: Mapping[str, Any]) -> tuple[dict[str, Any], Decimal | None]:
        prices: dict[str, Any] = {}
        image_price = None
        for key, value in item.items():
            if key in _PRICE_KEYS:
                continue
            amount = self.money(f"{path}.{key}", value)
            target: str
            if key in UNIT_PRICE_KEYS:
                unit = UNIT_PRICE_KEYS[key]
                if unit is None:
                    image_price = amount
                    continue
                target, per = unit
                amount *= per
            elif key.endswith("_ktok"):
                target, amount = key[: -len("_ktok")] + "_mtok", amount * 1000
            else:
                target = key
            if target in prices:
                self.fail(f"{path}.{key}", f"prices {target} a second time")
            prices[target] = amount
        return prices, image_price

    def tiers(self, path: str, value: object, prices: dict[str, Any]) -> None:
        """[[price.tiers]] with `above` (prompt tokens, strictly more) and the tier's rates."""
        tiers = self.tables(f"{path}.tiers", value)
        by_key: dict[str, list[gp.Tier]] = {}
        for j, tier in enumerate(tiers):
            tpath = f"{path}.tiers[{j}]"
            above = tier.get("above")
            if isinstance(above, bool) or not isinstance(above, int) or above < 0:
                self.fail(f"{tpath}.above", "must be a non-negative integer token count")
            for key, amount in tier.items():
                if key == "above":
                    continue
                if not key.endswith("_mtok") or key not in prices:
                    self.fail(f"{tpath}.{key}", "must be a *_mtok key that the entry also prices below the tier")
                by_key.setdefault(key, []).append(gp.Tier(start=above, price=self.money(f"{tpath}.{key}", amount)))
        for key, key_tiers in by_key.items():
            prices[key] = gp.TieredPrices(base=prices[key], tiers=key_tiers)

    def multiplier(self, path: str, item: Mapping[str, Any]) -> Decimal | None:
        if "multiplier" in item and "discount" in item:
            self.fail(path, "gives both multiplier and discount; use one")
        if "multiplier" in item:
            return self.money(f"{path}.multiplier", item["multiplier"])
        if "discount" not in item:
            return None
        raw = item["discount"]
        if isinstance(raw, str) and raw.strip().endswith("%"):
            fraction = self.money(f"{path}.discount", raw.strip()[:-1]) / 100
        else:
            fraction = self.money(f"{path}.discount", raw)
        if fraction > 1:
            self.fail(f"{path}.discount", 'must be a fraction (0.15) or a percentage ("15%") of at most 100%')
        return 1 - fraction


__all__ = [
    "ANY",
    "SERVICE_TIERS",
    "UNIT_PRICE_KEYS",
    "AliasRule",
    "Entry",
    "ModelMatcher",
    "PriceFile",
    "PriceRule",
    "load_price_file",
    "normalize_tier",
    "parse_price_file",
]
