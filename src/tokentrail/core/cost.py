"""The priced side of a call: exact Decimal money, never float."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from tokentrail.core.errors import ValidationError
from tokentrail.core.fields import JsonSection, compile_to_dict, compile_to_json


class PricingStatus(StrEnum):
    PRICED = "priced"
    UNPRICED = "unpriced"  # unknown model: cost is None, never $0
    ESTIMATED = "estimated"  # usage counted locally, not reported by the provider
    PROVIDER_REPORTED = "provider_reported"  # the provider's own figure wins
    OVERRIDE = "override"  # priced by the user's overrides file


_MONEY_FIELDS: tuple[str, ...] = (
    "input_cost",
    "cache_read_cost",
    "cache_write_cost",
    "output_cost",
    "other_cost",
    "total_cost",
    "input_price_per_1k",
    "output_price_per_1k",
    "provider_reported_cost",
    "computed_cost",
)


def to_decimal(field: str, value: object) -> Decimal | None:
    """Money from JSON or Python: Decimal, int or a decimal string. Floats are refused."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValidationError(field, "must be a decimal string, got bool")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValidationError(field, f"{value!r} is not a decimal number") from None
    elif isinstance(value, float):
        # Accept floats only from the JSON boundary, through their shortest repr, so that
        # 0.1 stays 0.1 rather than its binary expansion.
        result = Decimal(repr(value))
    else:
        raise ValidationError(field, f"must be a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise ValidationError(field, "must be finite")
    if result < 0:
        raise ValidationError(field, f"must not be negative, got {result}")
    return result


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Cost of one call split into disjoint buckets (USD, Decimal).

    `input_cost` is uncached input; cache reads and writes have their own buckets;
    `other_cost` holds per-unit charges (requests, pages, searches, seconds).
    When `pricing_status` is `provider_reported`, `total_cost` is the provider's figure and
    `computed_cost` keeps tokentrail's own computation beside it.
    """

    input_cost: Decimal | None = None
    cache_read_cost: Decimal | None = None
    cache_write_cost: Decimal | None = None
    output_cost: Decimal | None = None
    other_cost: Decimal | None = None
    total_cost: Decimal | None = None
    currency: str = "USD"
    input_price_per_1k: Decimal | None = None
    output_price_per_1k: Decimal | None = None
    pricing_status: PricingStatus = PricingStatus.UNPRICED
    price_version: str | None = None
    provider_reported_cost: Decimal | None = None
    computed_cost: Decimal | None = None
    # Which layer priced it (`override`, `supplement`, `catalog`) and the model id matched.
    price_source: str | None = None
    priced_model: str | None = None
    # Why a call is unpriced (unknown model, missing usage), for people reading the record.
    reason: str | None = None

    def __post_init__(self) -> None:
        for name in _MONEY_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Decimal):
                raise ValidationError(name, f"must be a Decimal, got {type(value).__name__}")
            if value is not None and (not value.is_finite() or value < 0):
                raise ValidationError(name, f"must be a finite non-negative amount, got {value}")
        if not isinstance(self.pricing_status, PricingStatus):
            try:
                object.__setattr__(self, "pricing_status", PricingStatus(self.pricing_status))
            except ValueError:
                allowed = ", ".join(s.value for s in PricingStatus)
                raise ValidationError("pricing_status", f"{self.pricing_status!r} is not one of {allowed}") from None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    def to_json(self) -> str:
        """`to_dict()` as compact JSON text."""
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: object, *, path: str = "cost_metrics") -> CostBreakdown:
        if not isinstance(data, Mapping):
            raise ValidationError(path, f"must be an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValidationError(f"{path}.{key}", "is not a cost_metrics field")
            if value is None:
                continue
            if key in _MONEY_FIELDS:
                kwargs[key] = to_decimal(f"{path}.{key}", value)
            elif not isinstance(value, str):
                raise ValidationError(f"{path}.{key}", f"must be a string, got {type(value).__name__}")
            else:
                kwargs[key] = value
        if kwargs.get("currency", "USD") != "USD":
            raise ValidationError(f"{path}.currency", "only USD is supported")
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            raise exc.prefixed(path) from None


def _json_value(value: Any) -> Any:
    """The general rule of `CostBreakdown.to_dict` for one present value."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, PricingStatus):
        return value.value
    return value


# compiled per field (same result as `_json_value` on each): this runs for every record
_KINDS = {name: "decimal" for name in _MONEY_FIELDS} | {"pricing_status": "enum"}
_to_dict = compile_to_dict(CostBreakdown, _KINDS, _json_value, enum_types=(PricingStatus,))
_to_json = compile_to_json(CostBreakdown, _KINDS, _json_value, enum_types=(PricingStatus,))
COST_JSON = JsonSection(CostBreakdown, _json_value, _KINDS, enum_types=(PricingStatus,))  # inline in LLMCall


class _CostSlots:
    """CostBreakdown's exact slot layout without its frozen `__setattr__` (see `trusted_cost_breakdown`)."""

    __slots__ = CostBreakdown.__slots__  # type: ignore[attr-defined]


# The fast constructor below assigns every slot by name; adding a field to CostBreakdown must
# update it, so fail at import rather than produce half-initialised objects.
if CostBreakdown.__slots__ != (  # type: ignore[attr-defined]
    "input_cost", "cache_read_cost", "cache_write_cost", "output_cost", "other_cost", "total_cost",
    "currency", "input_price_per_1k", "output_price_per_1k", "pricing_status", "price_version",
    "provider_reported_cost", "computed_cost", "price_source", "priced_model", "reason",
):  # fmt: skip
    raise TypeError("CostBreakdown fields changed: update trusted_cost_breakdown")


def trusted_cost_breakdown(
    input_cost: Decimal,
    cache_read_cost: Decimal,
    cache_write_cost: Decimal,
    output_cost: Decimal,
    other_cost: Decimal,
    total_cost: Decimal,
    input_price_per_1k: Decimal | None,
    output_price_per_1k: Decimal | None,
    pricing_status: PricingStatus,
    price_version: str | None,
    price_source: str | None,
    priced_model: str | None,
) -> CostBreakdown:
    """A CostBreakdown built without `__post_init__` validation, for the price engine only.

    The engine computes these values itself (non-negative Decimals from validated prices and
    counts, a real PricingStatus), so re-checking them on every call would cost more than the
    arithmetic. The object is filled through a class with the same slots and then given its
    real class, which yields an ordinary, frozen CostBreakdown (equality, hashing and
    `to_dict` behave as usual).
    """
    obj = _CostSlots()
    obj.input_cost = input_cost  # type: ignore[attr-defined]
    obj.cache_read_cost = cache_read_cost  # type: ignore[attr-defined]
    obj.cache_write_cost = cache_write_cost  # type: ignore[attr-defined]
    obj.output_cost = output_cost  # type: ignore[attr-defined]
    obj.other_cost = other_cost  # type: ignore[attr-defined]
    obj.total_cost = total_cost  # type: ignore[attr-defined]
    obj.currency = "USD"  # type: ignore[attr-defined]
    obj.input_price_per_1k = input_price_per_1k  # type: ignore[attr-defined]
    obj.output_price_per_1k = output_price_per_1k  # type: ignore[attr-defined]
    obj.pricing_status = pricing_status  # type: ignore[attr-defined]
    obj.price_version = price_version  # type: ignore[attr-defined]
    obj.provider_reported_cost = None  # type: ignore[attr-defined]
    obj.computed_cost = None  # type: ignore[attr-defined]
    obj.price_source = price_source  # type: ignore[attr-defined]
    obj.priced_model = priced_model  # type: ignore[attr-defined]
    obj.reason = None  # type: ignore[attr-defined]
    obj.__class__ = CostBreakdown  # type: ignore[assignment]
    return obj  # type: ignore[return-value]
