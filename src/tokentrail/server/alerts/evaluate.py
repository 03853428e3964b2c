"""One evaluation pass: measure every budget and alert rule over its current period and claim
an alert for each threshold crossed that has none yet.

Budgets alert at each fraction of `alert_at` (`budget:<id>.<created>:<period start>:<fraction>`);
a rule alerts once per window (`rule:<id>.<created>:<window start>`). The measurement reads the rollups
in one snapshot; keys already in the history are skipped without a write, so a pass that
finds nothing new is read-only. Claims insert-or-nothing on a unique key, so passes running
at the same time (threads, instances) send each alert once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy.engine import Connection

from tokentrail.core.columns import to_micros
from tokentrail.server.alerts import store
from tokentrail.server.alerts.periods import calendar_bounds, iso
from tokentrail.server.alerts.specs import AlertRule, Budget, budget_json, metric_json, usd_text
from tokentrail.server.db.budgets import Observation, list_budgets, list_rules, observe
from tokentrail.server.db.engine import Database

logger = logging.getLogger("tokentrail.alerts")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget with its spend in the period holding a moment."""

    budget: Budget
    period_start: datetime
    period_end: datetime
    spent: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(self.budget.limit - self.spent, Decimal(0))

    def to_json(self) -> dict[str, Any]:
        return {
            **budget_json(self.budget),
            "spent_usd": usd_text(self.spent),
            "remaining_usd": usd_text(self.remaining),
            "period_start": iso(self.period_start),
            "period_end": iso(self.period_end),
        }


def budget_status(conn: Connection, budget: Budget, at: datetime) -> BudgetStatus:
    start, end = calendar_bounds(budget.period, at)
    spent = observe(conn, budget.scope, start, end).cost
    return BudgetStatus(budget, start, end, spent)


def _threshold_usd(limit: Decimal, fraction: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60  # exact: a limit has at most 19 digits, a fraction a few
        return limit * fraction


def budget_firings(status: BudgetStatus, fired_at: datetime) -> list[store.Firing]:
    """One firing per `alert_at` fraction the spend has reached."""
    budget = status.budget
    out = []
    for fraction in budget.alert_at:
        threshold = _threshold_usd(budget.limit, fraction)
        if status.spent < threshold:
            break  # ascending
        payload = {
            "kind": "budget",
            "budget_id": budget.id,
            "name": budget.name,
            "scope": dict(budget.scope),
            "metric": "spend",
            "period": budget.period,
            "threshold": float(fraction),
            "threshold_usd": usd_text(threshold),
            "limit_usd": usd_text(budget.limit),
            "observed": usd_text(status.spent),
            "hard": budget.hard,
            "period_start": iso(status.period_start),
            "period_end": iso(status.period_end),
            "fired_at": iso(fired_at),
        }
        # created_at: SQLite may hand a deleted budget's id to the next one; its alerts are its own
        key = f"budget:{budget.id}.{budget.created_at}:{to_micros(status.period_start)}:{usd_text(fraction)}"
        out.append(store.Firing(key, "budget", budget.id, budget.name, budget.project, payload, budget.webhook_url))
    return out


def observed_value(rule: AlertRule, seen: Observation) -> Decimal | float | int | None:
    """The value a rule compares with its threshold (None: not enough calls to judge)."""
    if rule.metric == "spend":
        return seen.cost
    if rule.metric == "tokens":
        return seen.tokens
    if seen.calls < rule.min_calls:
        return None
    if rule.metric == "error_rate":
        return seen.error_rate
    return seen.p95_ms  # p95_latency_ms


def rule_firing(
    rule: AlertRule, seen: Observation, start: datetime, end: datetime, fired_at: datetime
) -> store.Firing | None:
    value = observed_value(rule, seen)
    if value is None or Decimal(value) < rule.threshold:
        return None
    payload = {
        "kind": "rule",
        "rule_id": rule.id,
        "name": rule.name,
        "scope": dict(rule.scope),
        "metric": rule.metric,
        "window": rule.window.text,
        "threshold": metric_json(rule.metric, rule.threshold),
        "observed": metric_json(rule.metric, value),
        "calls": seen.calls,
        "period_start": iso(start),
        "period_end": iso(end),
        "fired_at": iso(fired_at),
    }
    key = f"rule:{rule.id}.{rule.created_at}:{to_micros(start)}"
    return store.Firing(key, "rule", rule.id, rule.name, rule.project, payload, rule.webhook_url)


def find_firings(conn: Connection, at: datetime, projects: set[str] | None = None) -> list[store.Firing]:
    """Every threshold crossed at `at` (claimed before or not), for budgets and rules of
    `projects` and of every project (None: all)."""
    firings: list[store.Firing] = []
    for budget in list_budgets(conn, projects=projects):
        firings += budget_firings(budget_status(conn, budget, at), at)
    for rule in list_rules(conn, projects=projects):
        start, end = rule.window.bounds(at)
        firing = rule_firing(rule, observe(conn, rule.scope, start, end), start, end, at)
        if firing is not None:
            firings.append(firing)
    return firings


def evaluate(db: Database, at: datetime, projects: set[str] | None = None) -> list[int]:
    """Claim the alerts due at `at`; returns the ids this pass claimed (and must deliver)."""
    with db.read() as conn:
        firings = find_firings(conn, at, projects)
        if not firings:
            return []
        known = store.existing(conn, (f.dedupe_key for f in firings))
    new = [f for f in firings if f.dedupe_key not in known]
    if not new:
        return []
    claimed: list[int] = []
    now = time.time_ns() // 1000
    with db.write() as conn:
        for firing in new:
            alert_id = store.claim(conn, firing, fired_at=to_micros(at), now=now)
            if alert_id is not None:
                claimed.append(alert_id)
                _log(alert_id, firing)
    return claimed


def _log(alert_id: int, firing: store.Firing) -> None:
    p = firing.payload
    if firing.kind == "budget":
        logger.warning(
            "tokentrail alert %d: budget %r reached %s%% of its %s limit ($%s of $%s, %s to %s)",
            alert_id,
            firing.name,
            usd_text(Decimal(str(p["threshold"])) * 100),
            p["period"],
            p["observed"],
            p["limit_usd"],
            p["period_start"],
            p["period_end"],
        )
    else:
        logger.warning(
            "tokentrail alert %d: rule %r: %s is %s (threshold %s) in %s to %s",
            alert_id,
            firing.name,
            p["metric"],
            p["observed"],
            p["threshold"],
            p["period_start"],
            p["period_end"],
        )


__all__ = [
    "BudgetStatus",
    "budget_firings",
    "budget_status",
    "evaluate",
    "find_firings",
    "observed_value",
    "rule_firing",
]
