"""`/v1/budgets`: create, list, read, change and delete budgets.

A budget is `{"name", "scope": {project, user_id, tenant_id, feature, model, provider},
"period": "day"|"week"|"month", "limit_usd": "100.00", "alert_at": [0.5, 0.8, 1.0],
"hard": bool, "webhook_url"}`. Reads add the current period (UTC) and its spend, computed
from the rollups: `spent_usd`, `remaining_usd` (exact decimal strings), `period_start`,
`period_end`. A project key manages only budgets of its project (`scope.project` is set to
it; naming another project is 403); an admin key manages all.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from tokentrail.server import jsonio
from tokentrail.server.alerts import periods
from tokentrail.server.alerts.evaluate import budget_status
from tokentrail.server.alerts.service import records_stored
from tokentrail.server.alerts.specs import Budget, parse_budget
from tokentrail.server.api.deps import database, require_principal
from tokentrail.server.api.errors import ApiError
from tokentrail.server.auth import Principal
from tokentrail.server.db import budgets as store
from tokentrail.server.db import rollups
from tokentrail.server.db.engine import Database

router = APIRouter(tags=["budgets"])
MAX_BODY = 1024 * 1024
MAX_SYNC_IDS = 10_000
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


async def read_json(request: Request) -> Any:
    """The request's JSON body (400 naming `body` when it is not JSON)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, f"the body is over the {MAX_BODY}-byte limit")
    try:
        return jsonio.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError.field("body", f"is not valid JSON: {exc}") from None


def scoped(principal: Principal, scope: dict[str, str]) -> dict[str, str]:
    """The scope a key may write: a project key's project is set (another one is 403)."""
    if principal.admin:
        return scope
    project = principal.scoped_project(scope.get("project"))
    assert project is not None
    return {**scope, "project": project}


def key_project(principal: Principal) -> str | None:
    """None for an admin key (every budget), else the key's project."""
    return None if principal.admin else principal.project


def _name_taken(exc: Exception) -> ApiError:
    reason = exc.reason if isinstance(exc, store.NameTaken) else "is already used by another budget of this project"
    return ApiError.field("name", reason, status=409)


def _create(db: Database, budget: Budget) -> dict[str, Any]:
    try:
        with db.write() as conn:
            created = store.create_budget(conn, budget, periods.wall_micros())
    except (store.NameTaken, IntegrityError) as exc:
        raise _name_taken(exc) from None
    with db.read() as conn:
        return budget_status(conn, created, periods.now()).to_json()


@router.post("/v1/budgets", status_code=201, summary="Create a budget")
async def post_budget(request: Request, principal: Annotated[Principal, Depends(require_principal)]) -> JSONResponse:
    budget = parse_budget(await read_json(request))
    budget = replace(budget, scope=scoped(principal, dict(budget.scope)))
    answer = await run_in_threadpool(_create, database(request), budget)
    records_stored(request.app, budget.project or None)  # it may be crossed already
    return JSONResponse(answer, status_code=201)


@router.get("/v1/budgets", summary="Budgets with their spend in the current period")
def get_budgets(
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    project: Annotated[str | None, Query(description="Only this project's budgets (admin keys).")] = None,
) -> JSONResponse:
    wanted = principal.scoped_project(project)
    rollups.catch_up(db)  # calls the SDK wrote straight into the file count too
    at = periods.now()
    with db.read() as conn:
        listed = [budget_status(conn, b, at).to_json() for b in store.list_budgets(conn, project=wanted)]
    # `project`: where this key's records land (the SDK matches scopes with it)
    return JSONResponse({"budgets": listed, "project": key_project(principal)})


def _sync(db: Database, principal: Principal, ids: list[str]) -> dict[str, Any]:
    rollups.catch_up(db)
    at = periods.now()
    project = key_project(principal)
    with db.read() as conn:  # one snapshot: the spend and the ids agree exactly
        listed = [budget_status(conn, b, at).to_json() for b in store.list_budgets(conn, project=project)]
        known = store.stored_ids(conn, ids, project=project)
    return {"budgets": listed, "project": project, "known": known}


@router.post("/v1/budgets/sync", summary="The SDK's sync: budgets with spend, and which call ids are stored")
async def sync_budgets(request: Request, principal: Annotated[Principal, Depends(require_principal)]) -> JSONResponse:
    """`{"ids": [call id, ...]}` (at most 10,000): the calls the SDK counted but does not know
    to be stored. The answer is `GET /v1/budgets`'s plus `known`, the ids among them that are
    stored, read in the same snapshot as the spend, so the SDK counts each call exactly once."""
    body = await read_json(request)
    ids = body.get("ids", []) if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) and "\x00" not in i for i in ids):
        raise ApiError.field("ids", "must be a list of call ids (strings)")
    if len(ids) > MAX_SYNC_IDS:
        raise ApiError.field("ids", f"must hold at most {MAX_SYNC_IDS} ids")
    return JSONResponse(await run_in_threadpool(_sync, database(request), principal, ids))


def _one(db: Database, budget_id: int, principal: Principal) -> Budget:
    with db.read() as conn:
        budget = store.get_budget(conn, budget_id, project=key_project(principal))
    if budget is None:
        raise ApiError(404, "budget not found")
    return budget


@router.get("/v1/budgets/{budget_id}", summary="One budget with its spend in the current period")
def get_budget(
    budget_id: Id,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
) -> JSONResponse:
    budget = _one(db, budget_id, principal)
    rollups.catch_up(db)
    with db.read() as conn:
        return JSONResponse(budget_status(conn, budget, periods.now()).to_json())


def _update(db: Database, budget: Budget) -> dict[str, Any]:
    try:
        with db.write() as conn:
            updated = store.update_budget(conn, budget, periods.wall_micros())
    except (store.NameTaken, IntegrityError) as exc:
        raise _name_taken(exc) from None
    with db.read() as conn:
        return budget_status(conn, updated, periods.now()).to_json()


@router.patch("/v1/budgets/{budget_id}", summary="Change a budget (the fields given)")
async def patch_budget(
    budget_id: Id, request: Request, principal: Annotated[Principal, Depends(require_principal)]
) -> JSONResponse:
    db = database(request)
    body = await read_json(request)
    current = await run_in_threadpool(_one, db, budget_id, principal)
    budget = parse_budget(body, base=current)
    budget = replace(budget, scope=scoped(principal, dict(budget.scope)))
    answer = await run_in_threadpool(_update, db, budget)
    records_stored(request.app, budget.project or None)
    return JSONResponse(answer)


@router.delete("/v1/budgets/{budget_id}", status_code=204, summary="Delete a budget")
def delete_budget(
    budget_id: Id,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
) -> Response:
    with db.write() as conn:
        deleted = store.delete_budget(conn, budget_id, project=key_project(principal))
    if not deleted:
        raise ApiError(404, "budget not found")
    return Response(status_code=204)


__all__ = ["key_project", "read_json", "router", "scoped"]
