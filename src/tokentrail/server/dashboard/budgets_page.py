"""The dashboard's "Budgets & alerts" page: each budget's spend in its current period (the
numbers `GET /v1/budgets` answers), the alert rules with what they observe now, and the
alert history with delivery state (as `GET /v1/alerts`). A project key's session sees only
its project; an admin's sees all, with a project selector."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from tokentrail.core.columns import from_micros
from tokentrail.server.alerts import periods
from tokentrail.server.alerts import store as history
from tokentrail.server.alerts.evaluate import budget_status, observed_value
from tokentrail.server.alerts.periods import iso
from tokentrail.server.alerts.specs import AlertRule, metric_json, rule_json
from tokentrail.server.api.deps import database
from tokentrail.server.auth import Forbidden, Principal
from tokentrail.server.dashboard.login import current_principal, to_login
from tokentrail.server.dashboard.render import error_page, page
from tokentrail.server.db import budgets as store
from tokentrail.server.db import rollups
from tokentrail.server.db.engine import Database

router = APIRouter(include_in_schema=False)
HISTORY_LIMIT = 50  # the newest alerts; the API pages through the rest


@dataclass(frozen=True, slots=True)
class BudgetView:
    """A budget as `GET /v1/budgets` answers it, plus the share of its limit spent."""

    data: dict[str, Any]
    used: Decimal  # spent / limit, unclamped (over 1 when overspent)

    @property
    def exhausted(self) -> bool:
        return self.used >= 1


def _rule_view(conn: Connection, rule: AlertRule, at: datetime) -> dict[str, Any]:
    """The rule with its current window and observed value, as `GET /v1/alert-rules`."""
    start, end = rule.window.bounds(at)
    seen = store.observe(conn, rule.scope, start, end)
    value = observed_value(rule, seen)
    return {
        **rule_json(rule),
        "period_start": iso(start),
        "period_end": iso(end),
        "calls": seen.calls,
        "observed": None if value is None else metric_json(rule.metric, value),
    }


def _collect(db: Database, project: str | None, admin: bool) -> dict[str, Any]:
    rollups.catch_up(db)  # calls the SDK wrote straight into the file count too
    at = periods.now()
    with db.read() as conn:  # one snapshot: budgets, rules and history agree
        budgets = []
        for budget in store.list_budgets(conn, project=project):
            status = budget_status(conn, budget, at)
            used = status.spent / budget.limit if budget.limit else Decimal(0)
            budgets.append(BudgetView(status.to_json(), used))
        rules = [_rule_view(conn, rule, at) for rule in store.list_rules(conn, project=project)]
        alerts = history.history(conn, project=project, limit=HISTORY_LIMIT + 1)
        names: set[str] = set()
        if admin:  # the selector offers every project that has a budget or a rule
            names = {b.project for b in store.list_budgets(conn)} | {r.project for r in store.list_rules(conn)}
    for item in alerts:
        if item["delivered_at"] is not None:
            item["delivered_at"] = iso(from_micros(item["delivered_at"]))
    return {
        "budgets": budgets,
        "rules": rules,
        "alerts": alerts[:HISTORY_LIMIT],
        "more_alerts": len(alerts) > HISTORY_LIMIT,
        "projects": sorted(name for name in names if name),
        "now": iso(at),
    }


@router.get("/budgets", response_class=HTMLResponse)
def budgets_page(request: Request, project: str | None = None) -> Response:
    principal: Principal | None = current_principal(request)
    if principal is None:
        return to_login(request)
    try:
        scoped = principal.scoped_project(project or None)
    except Forbidden as exc:
        return error_page(request, principal, 403, "Forbidden", str(exc))
    data = _collect(database(request), scoped, principal.admin)
    return page(request, "budgets.html", principal, section="budgets", title="Budgets & alerts", project=scoped, **data)


__all__ = ["BudgetView", "router"]
