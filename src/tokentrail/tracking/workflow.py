"""`workflow` groups the calls of one business operation; `emit_outcome` says how it ended.

Design (cost per outcome from stored records alone):
- the workflow is itself a record (`operation="invoke_workflow"`, `name=` the workflow);
  every record made inside it shares its `trace_id` and has `parent_id` = the workflow's id
  (directly, or through nested workflows/tool calls), and carries `attribution.workflow`,
  `event_id` and `customer_id`;
- `emit_outcome` writes the outcome onto that workflow record's metadata:
  `outcome.status`, `outcome.value_type`, `outcome.value_amount` (a decimal string),
  `outcome.count` and `outcome.<key>` for extra keys;
- the workflow record also carries the roll-up of what ran inside it:
  `workflow.cost_usd` (decimal string), `workflow.calls`, `workflow.unpriced_calls`.
  The workflow record has no `cost_metrics` of its own, so summing `total_cost` over all
  records never counts a call twice.
Cost per outcome is then `sum(workflow.cost_usd) / count(outcome.status = 'success')` over
workflow records, or equivalently the children's `total_cost` grouped by `trace_id`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from contextvars import ContextVar, Token
from decimal import Decimal, InvalidOperation
from typing import Any, ParamSpec, TypeVar

from tokentrail.core import LLMCall, ModelOperation, ValidationError
from tokentrail.core.attribution import attribution
from tokentrail.core.settings import Settings
from tokentrail.tracking.guard import guard
from tokentrail.tracking.operation import ROLLUP, CostRollup, Operation, jsonable

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("tokentrail")

_CURRENT: ContextVar[WorkflowRun | None] = ContextVar("tokentrail_workflow", default=None)


def _amount(value: int | float | Decimal | str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError("value_amount", "must be a number, got bool")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError("value_amount", f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise ValidationError("value_amount", "must be finite")
    return amount


class WorkflowRun(Operation):
    """One execution of a workflow. Also usable as a decorator (each call is its own run)."""

    __slots__ = ("_attr", "_rollup", "_rollup_token", "_wf_token", "customer_id", "event_id", "outcome")

    def __init__(self, name: str, event_id: str | None = None, customer_id: str | None = None) -> None:
        super().__init__(ModelOperation.INVOKE_WORKFLOW, name=str(name))
        self.event_id = str(event_id) if event_id is not None else None
        self.customer_id = str(customer_id) if customer_id is not None else None
        self.outcome: dict[str, Any] = {}
        self._attr: attribution | None = None
        self._rollup: CostRollup | None = None
        self._rollup_token: Token[CostRollup | None] | None = None
        self._wf_token: Token[WorkflowRun | None] | None = None

    # ---- lifecycle: attribution and roll-up around the base behaviour ------------------------
    def _begin(self, **kwargs: Any) -> None:
        self._attr = attribution(workflow=self.name, event_id=self.event_id, customer_id=self.customer_id)
        self._attr.__enter__()
        self._rollup = CostRollup(ROLLUP.get())
        self._rollup_token = ROLLUP.set(self._rollup)
        self._wf_token = _CURRENT.set(self)
        super()._begin(**kwargs)

    def _end(self, exc: BaseException | None = None, **kwargs: Any) -> LLMCall | None:
        try:
            return super()._end(exc, **kwargs)
        finally:
            for var, token in ((_CURRENT, self._wf_token), (ROLLUP, self._rollup_token)):
                if token is not None:
                    try:
                        var.reset(token)  # type: ignore[arg-type]
                    except ValueError:
                        var.set(None)  # type: ignore[arg-type]
            self._wf_token = self._rollup_token = None
            if self._attr is not None:
                self._attr.__exit__(None, None, None)
                self._attr = None

    # ---- outcome ---------------------------------------------------------------------------
    def set_outcome(
        self,
        status: str,
        value_type: str | None = None,
        value_amount: int | float | Decimal | str | None = None,
        **metadata: Any,
    ) -> None:
        """Record how the workflow ended. Repeated calls: the last status wins, and amounts of
        the same `value_type` add up (emit 1 per item processed and get the total)."""
        if not isinstance(status, str) or not status:
            raise ValidationError("status", f"must be a non-empty string, got {status!r}")
        outcome = self.outcome
        outcome["status"] = status
        outcome["count"] = outcome.get("count", 0) + 1
        if value_amount is not None:
            amount = _amount(value_amount)
            if value_type == outcome.get("value_type") and "value_amount" in outcome:
                amount += Decimal(outcome["value_amount"])
            outcome["value_amount"] = str(amount)
        if value_type is not None:
            outcome["value_type"] = str(value_type)
        for key, value in metadata.items():
            outcome[key] = value

    def _record(self, settings: Settings) -> LLMCall:
        common = self._common(settings)
        extra: dict[str, Any] = {f"outcome.{k}": v for k, v in self.outcome.items()}
        rollup = self._rollup
        if rollup is not None:
            with rollup.lock:
                extra["workflow.cost_usd"] = str(rollup.total)
                extra["workflow.calls"] = rollup.calls
                extra["workflow.unpriced_calls"] = rollup.unpriced
        common["metadata"] = jsonable({**(common["metadata"] or {}), **extra})
        return LLMCall(**common)

    # ---- decorator form --------------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        name, event_id, customer_id = self.name or fn.__qualname__, self.event_id, self.customer_id

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with WorkflowRun(name, event_id, customer_id):
                    return await fn(*args, **kwargs)  # type: ignore[misc]

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with WorkflowRun(name, event_id, customer_id):
                return fn(*args, **kwargs)

        return wrapper


def workflow(name: str, event_id: str | None = None, customer_id: str | None = None) -> WorkflowRun:
    """Group the calls of one business operation.

    As a decorator, `@workflow("checkout", customer_id="c1")`, each call of the function (sync
    or async) is one run. As a context manager, `with workflow("checkout") as run:` (or
    `async with`). The run's record (`invoke_workflow`) parents every record made inside.
    """
    return WorkflowRun(name, event_id, customer_id)


def current_workflow() -> WorkflowRun | None:
    return _CURRENT.get()


def emit_outcome(
    status: str,
    value_type: str | None = None,
    value_amount: int | float | Decimal | str | None = None,
    **metadata: Any,
) -> bool:
    """Record a business outcome (e.g. `"success"`, `value_type="items_processed"`,
    `value_amount=1`) on the innermost running workflow. False when there is none."""
    run = _CURRENT.get()
    if run is None:
        logger.warning("tokentrail.emit_outcome(%r) outside a workflow: nothing recorded", status)
        return False
    with guard("workflow.emit_outcome"):
        run.set_outcome(status, value_type, value_amount, **metadata)
        return True
    return False


__all__ = ["WorkflowRun", "current_workflow", "emit_outcome", "workflow"]
