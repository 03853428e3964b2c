"""Errors shared by every layer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any


class TokentrailError(Exception):
    """Base class of every error tokentrail raises on purpose."""


class ValidationError(TokentrailError, ValueError):
    """Bad input: names the offending field (dotted path) and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def prefixed(self, prefix: str) -> ValidationError:
        """The same error, located under a parent section."""
        return ValidationError(f"{prefix}.{self.field}" if prefix else self.field, self.reason)


class MissingExtraError(TokentrailError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'tokentrail[{extra}]'")
        self.extra = extra


class BudgetExceeded(TokentrailError):
    """A hard budget is exhausted: the call was refused before the provider was called.

    Raised on purpose by budget enforcement (`configure(enforce_budgets=True)`), so the
    tracking guards let it through to the caller. `spent` is the budget's spend as this
    process knows it: the collector's figure at the last sync plus this process's calls the
    collector did not hold yet.
    """

    def __init__(
        self,
        budget: str,
        limit: Decimal,
        spent: Decimal,
        *,
        period: str | None = None,
        period_end: datetime | None = None,
        budget_id: int | None = None,
    ) -> None:
        until = f" until {period_end:%Y-%m-%d %H:%M} UTC" if period_end is not None else ""
        per = f" this {period}" if period else ""
        super().__init__(f"budget {budget!r} is exhausted: spent ${spent} of ${limit}{per}{until}")
        self.budget = budget
        self.limit = limit
        self.spent = spent
        self.period = period
        self.period_end = period_end  # datetime (UTC) when the budget resets
        self.budget_id = budget_id

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only attributes survive pickling (multiprocessing, task queues)
        return (_rebuild_budget_exceeded, (self.budget, self.limit, self.spent, self.__dict__))


def _rebuild_budget_exceeded(budget: str, limit: Decimal, spent: Decimal, state: dict[str, Any]) -> BudgetExceeded:
    exc = BudgetExceeded(budget, limit, spent, period=state.get("period"), period_end=state.get("period_end"))
    exc.__dict__.update(state)
    return exc
