"""Storing budgets and alert rules, and measuring what they watch.

`observe(conn, scope, start, end)` sums the calls of a scope over [start, end) with the
usage planner (`usage.py`), so it reads the rollups (day and hour cubes, the calls table only
for sub-hour edges) and answers exactly what `GET /v1/usage` would for the same filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tokentrail.core import ValidationError
from tokentrail.core.columns import to_micros, to_pico
from tokentrail.server.alerts.periods import parse_window
from tokentrail.server.alerts.specs import (
    SCOPE_FIELDS,
    AlertRule,
    Budget,
    alert_at_of,
    alert_at_text,
    limit_of,
    usd_text,
)
from tokentrail.server.db.budget_models import alert_rules, budgets
from tokentrail.server.db.filters import CallFilter
from tokentrail.server.db.models import calls
from tokentrail.server.db.usage import usage


class NameTaken(ValidationError):
    """Another budget or rule of the same project already has this name (answered 409)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What a scope did in a window."""

    calls: int = 0
    errors: int = 0
    tokens: int = 0  # input + output (both inclusive)
    cost: Decimal = Decimal(0)  # USD, exact
    p95_ms: float | None = None

    @property
    def error_rate(self) -> Decimal:
        return Decimal(self.errors) / Decimal(self.calls) if self.calls else Decimal(0)


def observe(conn: Connection, scope: Mapping[str, str], start: datetime, end: datetime) -> Observation:
    flt = CallFilter(since=to_micros(start), until=to_micros(end), equals=dict(scope))
    rows = usage(conn, (), flt).rows
    if not rows:
        return Observation()
    row = rows[0]
    return Observation(
        calls=row["calls"],
        errors=row["errors"],
        tokens=row["input_tokens"] + row["output_tokens"],
        cost=Decimal(row["total_cost"]),
        p95_ms=row["p95_ms"],
    )


def stored_ids(conn: Connection, ids: list[str], *, project: str | None = None) -> list[str]:
    """Which of `ids` are stored calls (of `project`, when given)."""
    found: list[str] = []
    for start in range(0, len(ids), 500):
        query = sa.select(calls.c.id).where(calls.c.id.in_(ids[start : start + 500]))
        if project is not None:
            query = query.where(calls.c.project == project)
        found.extend(conn.execute(query).scalars())
    return found


def _scope_values(scope: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {name: scope.get(name) for name in SCOPE_FIELDS}
    values["project"] = scope.get("project", "")
    return values


def _scope_of(row: Any) -> dict[str, str]:
    scope = {name: getattr(row, name) for name in SCOPE_FIELDS if getattr(row, name)}
    return scope


def _check_name(conn: Connection, table: sa.Table, project: str, name: str, exclude: int | None = None) -> None:
    query = sa.select(table.c.id).where(table.c.project == project, table.c.name == name)
    if exclude is not None:
        query = query.where(table.c.id != exclude)
    if conn.execute(query).first() is not None:
        where = f"project {project!r}" if project else "every project"
        raise NameTaken("name", f"{name!r} is already used by another one of {where}")


# ---- budgets --------------------------------------------------------------------------------
def _budget(row: Any) -> Budget:
    return Budget(
        name=row.name,
        period=row.period,
        limit=limit_of(row.limit_pico),
        scope=_scope_of(row),
        alert_at=alert_at_of(row.alert_at),
        hard=bool(row.hard),
        webhook_url=row.webhook_url,
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _budget_values(budget: Budget) -> dict[str, Any]:
    return {
        "name": budget.name,
        **_scope_values(budget.scope),
        "period": budget.period,
        "limit_pico": to_pico(budget.limit),
        "alert_at": alert_at_text(budget.alert_at),
        "hard": budget.hard,
        "webhook_url": budget.webhook_url,
    }


def create_budget(conn: Connection, budget: Budget, now: int) -> Budget:
    _check_name(conn, budgets, budget.project, budget.name)
    values = {**_budget_values(budget), "created_at": now, "updated_at": now}
    new_id = conn.execute(budgets.insert().values(**values).returning(budgets.c.id)).scalar_one()
    return get_budget(conn, int(new_id))  # type: ignore[return-value]


def update_budget(conn: Connection, budget: Budget, now: int) -> Budget:
    _check_name(conn, budgets, budget.project, budget.name, exclude=budget.id)
    values = {**_budget_values(budget), "updated_at": now}
    conn.execute(budgets.update().where(budgets.c.id == budget.id).values(**values))
    return get_budget(conn, budget.id)  # type: ignore[return-value]


def get_budget(conn: Connection, budget_id: int, *, project: str | None = None) -> Budget | None:
    """One budget, or None when absent or (with `project`) not that project's."""
    query = sa.select(budgets).where(budgets.c.id == budget_id)
    if project is not None:
        query = query.where(budgets.c.project == project)
    row = conn.execute(query).first()
    return None if row is None else _budget(row)


def list_budgets(conn: Connection, *, project: str | None = None, projects: set[str] | None = None) -> list[Budget]:
    """Budgets by id; `project` keeps one project's, `projects` those of any of the given
    projects and the budgets over every project ('')."""
    query = sa.select(budgets).order_by(budgets.c.id)
    if project is not None:
        query = query.where(budgets.c.project == project)
    if projects is not None:
        query = query.where(budgets.c.project.in_(sorted({*projects, ""})))
    return [_budget(row) for row in conn.execute(query)]


def delete_budget(conn: Connection, budget_id: int, *, project: str | None = None) -> bool:
    query = budgets.delete().where(budgets.c.id == budget_id)
    if project is not None:
        query = query.where(budgets.c.project == project)
    return (conn.execute(query).rowcount or 0) > 0


# ---- alert rules ----------------------------------------------------------------------------
def _rule(row: Any) -> AlertRule:
    return AlertRule(
        name=row.name,
        metric=row.metric,
        threshold=Decimal(row.threshold),
        window=parse_window("window", row.window),
        scope=_scope_of(row),
        webhook_url=row.webhook_url,
        min_calls=row.min_calls,
        id=row.id,
        created_at=row.created_at,
    )


def create_rule(conn: Connection, rule: AlertRule, now: int) -> AlertRule:
    _check_name(conn, alert_rules, rule.project, rule.name)
    values = {
        "name": rule.name,
        **_scope_values(rule.scope),
        "metric": rule.metric,
        "threshold": usd_text(rule.threshold),
        "window": rule.window.text,
        "min_calls": rule.min_calls,
        "webhook_url": rule.webhook_url,
        "created_at": now,
    }
    new_id = conn.execute(alert_rules.insert().values(**values).returning(alert_rules.c.id)).scalar_one()
    return get_rule(conn, int(new_id))  # type: ignore[return-value]


def get_rule(conn: Connection, rule_id: int, *, project: str | None = None) -> AlertRule | None:
    query = sa.select(alert_rules).where(alert_rules.c.id == rule_id)
    if project is not None:
        query = query.where(alert_rules.c.project == project)
    row = conn.execute(query).first()
    return None if row is None else _rule(row)


def list_rules(conn: Connection, *, project: str | None = None, projects: set[str] | None = None) -> list[AlertRule]:
    query = sa.select(alert_rules).order_by(alert_rules.c.id)
    if project is not None:
        query = query.where(alert_rules.c.project == project)
    if projects is not None:
        query = query.where(alert_rules.c.project.in_(sorted({*projects, ""})))
    return [_rule(row) for row in conn.execute(query)]


def delete_rule(conn: Connection, rule_id: int, *, project: str | None = None) -> bool:
    query = alert_rules.delete().where(alert_rules.c.id == rule_id)
    if project is not None:
        query = query.where(alert_rules.c.project == project)
    return (conn.execute(query).rowcount or 0) > 0


__all__ = [
    "NameTaken",
    "Observation",
    "create_budget",
    "create_rule",
    "delete_budget",
    "delete_rule",
    "get_budget",
    "get_rule",
    "list_budgets",
    "list_rules",
    "observe",
    "stored_ids",
    "update_budget",
    "usd_text",
]
