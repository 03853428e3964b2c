"""`/v1/alert-rules` (spend, tokens, error rate or p95 latency over a window) and
`/v1/alerts` (the history of fired alerts with their delivery state).

The router's lifespan starts the app's alert service (evaluator and delivery threads; see
`server/alerts/service.py`), inside the app's own lifespan, after migrations.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from tokentrail.core.columns import from_micros
from tokentrail.server.alerts import periods, service
from tokentrail.server.alerts import store as history
from tokentrail.server.alerts.evaluate import observed_value
from tokentrail.server.alerts.periods import iso
from tokentrail.server.alerts.specs import AlertRule, metric_json, parse_rule, rule_json
from tokentrail.server.api.budgets import key_project, read_json, scoped
from tokentrail.server.api.deps import database, require_principal, settings
from tokentrail.server.api.errors import ApiError
from tokentrail.server.auth import Principal
from tokentrail.server.db import budgets as store
from tokentrail.server.db import rollups
from tokentrail.server.db.engine import Database
from tokentrail.server.settings import ServerSettings

router = APIRouter(tags=["alerts"], lifespan=service.lifespan)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _rule_status(db: Database, rule: AlertRule) -> dict[str, Any]:
    """The rule and what it sees now: its window's bounds, calls and observed value."""
    at = periods.now()
    start, end = rule.window.bounds(at)
    with db.read() as conn:
        seen = store.observe(conn, rule.scope, start, end)
    value = observed_value(rule, seen)
    return {
        **rule_json(rule),
        "period_start": iso(start),
        "period_end": iso(end),
        "calls": seen.calls,
        "observed": None if value is None else metric_json(rule.metric, value),
    }


def _create(db: Database, rule: AlertRule) -> dict[str, Any]:
    try:
        with db.write() as conn:
            created = store.create_rule(conn, rule, periods.wall_micros())
    except (store.NameTaken, IntegrityError) as exc:
        reason = exc.reason if isinstance(exc, store.NameTaken) else "is already used by another rule"
        raise ApiError.field("name", reason, status=409) from None
    return _rule_status(db, created)


@router.post("/v1/alert-rules", status_code=201, summary="Create an alert rule")
async def post_rule(request: Request, principal: Annotated[Principal, Depends(require_principal)]) -> JSONResponse:
    rule = parse_rule(await read_json(request))
    rule = replace(rule, scope=scoped(principal, dict(rule.scope)))
    answer = await run_in_threadpool(_create, database(request), rule)
    service.records_stored(request.app, rule.project or None)  # it may hold already
    return JSONResponse(answer, status_code=201)


@router.get("/v1/alert-rules", summary="Alert rules with what each observes in its current window")
def get_rules(
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    project: Annotated[str | None, Query(description="Only this project's rules (admin keys).")] = None,
) -> JSONResponse:
    wanted = principal.scoped_project(project)
    rollups.catch_up(db)
    with db.read() as conn:
        rules = store.list_rules(conn, project=wanted)
    return JSONResponse({"rules": [_rule_status(db, rule) for rule in rules]})


@router.get("/v1/alert-rules/{rule_id}", summary="One alert rule")
def get_rule(
    rule_id: Id, principal: Annotated[Principal, Depends(require_principal)], db: Annotated[Database, Depends(database)]
) -> JSONResponse:
    with db.read() as conn:
        rule = store.get_rule(conn, rule_id, project=key_project(principal))
    if rule is None:
        raise ApiError(404, "alert rule not found")
    rollups.catch_up(db)
    return JSONResponse(_rule_status(db, rule))


@router.delete("/v1/alert-rules/{rule_id}", status_code=204, summary="Delete an alert rule")
def delete_rule(
    rule_id: Id, principal: Annotated[Principal, Depends(require_principal)], db: Annotated[Database, Depends(database)]
) -> Response:
    with db.write() as conn:
        deleted = store.delete_rule(conn, rule_id, project=key_project(principal))
    if not deleted:
        raise ApiError(404, "alert rule not found")
    return Response(status_code=204)


@router.get("/v1/alerts", summary="Fired alerts, newest first, with their delivery state")
def get_alerts(
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    config: Annotated[ServerSettings, Depends(settings)],
    kind: Annotated[Literal["budget", "rule"] | None, Query()] = None,
    budget_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    rule_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    status: Annotated[Literal["pending", "delivered", "failed", "logged"] | None, Query()] = None,
    project: Annotated[str | None, Query(description="Only this project's alerts (admin keys).")] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="next_cursor of the previous page.")] = None,
) -> JSONResponse:
    filters: dict[str, Any] = {}
    if budget_id is not None:
        filters.update(kind="budget", source_id=budget_id)
    if rule_id is not None:
        if budget_id is not None:
            raise ApiError.field("rule_id", "cannot be combined with budget_id")
        filters.update(kind="rule", source_id=rule_id)
    if kind is not None:
        if filters.get("kind", kind) != kind:
            raise ApiError.field("kind", f"contradicts the {filters['kind']}_id filter")
        filters["kind"] = kind
    if status is not None:
        filters["status"] = status
    wanted = principal.scoped_project(project)
    size = min(limit, config.max_page_size)
    with db.read() as conn:
        items = history.history(conn, project=wanted, filters=filters, before=cursor, limit=size + 1)
    more = len(items) > size
    items = items[:size]
    for item in items:
        if item["delivered_at"] is not None:
            item["delivered_at"] = iso(from_micros(item["delivered_at"]))
    next_cursor = items[-1]["id"] if more and items else None
    return JSONResponse({"alerts": items, "next_cursor": next_cursor})


__all__ = ["router"]
