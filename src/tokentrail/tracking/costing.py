"""Pricing of a finished LLM call, on the caller's thread so the emitted record is complete
(captured records, budgets and every sink see the same cost)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from tokentrail.core import CostBreakdown, PricingStatus, TokenUsage, Units
from tokentrail.pricing import apply_provider_reported, calculate_cost

_NO_USAGE = "no usage reported"


def price_call(
    provider: str,
    request_model: str | None,
    provider_model: str | None,
    usage: TokenUsage | None,
    units: Units | None,
    *,
    at: datetime,
    service_tier: str | None,
    estimated: bool,
    reported_cost: Decimal | None,
) -> CostBreakdown:
    """Cost of one call at the prices in force at `at`.

    The response's model is tried first (it is the model actually billed, and names dated
    snapshots); the requested one (an Azure deployment, an alias) second. Locally estimated
    usage turns a computed price into `estimated`; a provider-reported cost wins over both
    and keeps the computed figure beside it.
    """
    has_usage = usage is not None and not usage.is_empty
    has_units = units is not None and not units.is_empty
    model = provider_model or request_model
    if (has_usage or has_units) and model:
        cost = calculate_cost(provider, model, usage or TokenUsage(), at=at, service_tier=service_tier, units=units)
        if cost.total_cost is None and provider_model and request_model and request_model != provider_model:
            retry = calculate_cost(
                provider, request_model, usage or TokenUsage(), at=at, service_tier=service_tier, units=units
            )
            if retry.total_cost is not None:
                cost = retry
        if estimated and cost.total_cost is not None:
            cost = replace(cost, pricing_status=PricingStatus.ESTIMATED)
    else:
        cost = CostBreakdown(pricing_status=PricingStatus.UNPRICED, reason=_NO_USAGE if model else "no model named")
    if reported_cost is not None:
        cost = apply_provider_reported(cost, reported_cost)
    return cost


__all__ = ["price_call"]
