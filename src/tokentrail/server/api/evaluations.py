"""Evaluations (seed 001): the evaluation catalog, results attached to calls (with the judge's
own `llm_metadata`), and what evaluations cost by vendor or evaluation.

Scoping: a project key creates catalog entries in its project and sees its own plus the
shared ones (made by an admin without a project); it attaches results to its project's calls
only, and its cost report covers its project. Another project's call is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tokentrail.core import ValidationError
from tokentrail.server.api.deps import database, parse_time, require_principal
from tokentrail.server.api.errors import ApiError
from tokentrail.server.auth import Principal
from tokentrail.server.db import evaluations as store
from tokentrail.server.db.engine import Database

router = APIRouter(tags=["evaluations"])


def _storable(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    if value is not None:
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must not contain an unpaired UTF-16 surrogate") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]


class CatalogEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, Field(min_length=1, max_length=200, description="Unique within its project.")]
    source: Annotated[
        Text, Field(min_length=1, max_length=50, description="vendor, custom, llm_judge, ... (free text).")
    ] = "custom"
    vendor_name: Annotated[
        Text | None, Field(max_length=100, description="Display name: DeepEval, Ragas, MLflow, ...")
    ] = None
    adapter: Annotated[Text | None, Field(max_length=200, description="e.g. DeepEvalAdapter")] = None
    description: Annotated[Text | None, Field(max_length=10_000)] = None
    project: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=200,
            description="Admin keys only: the project (absent: shared by every project). "
            "A project key always writes into its own.",
        ),
    ] = None


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evaluation: Annotated[Text, Field(min_length=1, max_length=200, description="A catalog entry's name.")]
    id: Annotated[
        Text | None,
        Field(min_length=1, max_length=100, description="Optional client id: a retry stores nothing twice."),
    ] = None
    score: Annotated[float | None, Field(strict=True, allow_inf_nan=False)] = None
    passed: Annotated[bool | None, Field(strict=True)] = None
    reason: Annotated[Text | None, Field(max_length=100_000)] = None
    execution_time_ms: Annotated[float | None, Field(strict=True, ge=0, allow_inf_nan=False)] = None
    evaluated_at: Annotated[datetime | None, Field(description="When the evaluation ran (default: now).")] = None
    llm_metadata: Annotated[
        dict[str, Any] | None,
        Field(description="The judge's own LLM call (LLMCall-like JSON: provider, provider_model, token_usage, ...)."),
    ] = None


def _catalog_project(principal: Principal, requested: str | None) -> str:
    if principal.admin:
        return requested if requested is not None else store.GLOBAL
    if requested is not None and requested != principal.project:
        raise ApiError(403, f"this key belongs to project {principal.project!r}")
    return principal.project or store.GLOBAL


@router.post("/v1/evaluations/catalog", summary="Create or update an evaluation catalog entry")
def post_catalog_entry(
    body: CatalogEntryIn,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
) -> JSONResponse:
    project = _catalog_project(principal, body.project)
    with db.write() as conn:
        entry, created = store.save_catalog_entry(
            conn,
            project=project,
            name=body.name,
            source=body.source,
            vendor_name=body.vendor_name,
            adapter=body.adapter,
            description=body.description,
        )
    return JSONResponse(entry, status_code=201 if created else 200)


@router.get("/v1/evaluations/catalog", summary="Evaluation catalog entries visible to the key")
def get_catalog(
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    project: Annotated[str | None, Query(description="Admin: one project's entries and the shared ones.")] = None,
) -> JSONResponse:
    scoped = principal.scoped_project(project)
    with db.read() as conn:
        entries = store.list_catalog(conn, project=scoped, everything=scoped is None)
    return JSONResponse({"evaluations": entries})


def _visible_call(db: Database, principal: Principal, call_id: str) -> str | None:
    """The call's project, or 404 when the key may not see it (absent or another project's)."""
    if "\x00" not in call_id:
        with db.read() as conn:
            found, project = store.call_project(conn, call_id, None if principal.admin else principal.project)
        if found:
            return project
    raise ApiError(404, "call not found")


def _add(db: Database, principal: Principal, call_id: str, body: ResultIn) -> tuple[dict[str, Any], bool]:
    project = _visible_call(db, principal, call_id)
    evaluated_at = body.evaluated_at
    if evaluated_at is not None and evaluated_at.tzinfo is None:
        evaluated_at = evaluated_at.replace(tzinfo=UTC)
    result = store.NewResult(
        evaluation=body.evaluation,
        id=body.id,
        score=body.score,
        passed=body.passed,
        reason=body.reason,
        execution_time_ms=body.execution_time_ms,
        evaluated_at=evaluated_at,
        llm_metadata=body.llm_metadata,
    )
    try:
        with db.write() as conn:
            return store.add_result(conn, call_id, project, result)
    except store.ResultConflict as exc:
        raise ApiError(409, str(exc)) from None


@router.post(
    "/v1/calls/{call_id}/evaluations",
    summary="Attach an evaluation result to a call",
    responses={201: {"description": "stored"}, 200: {"description": "this id was stored before"}},
)
async def post_result(
    call_id: str,
    body: ResultIn,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
) -> JSONResponse:
    stored, new = await run_in_threadpool(_add, db, principal, call_id, body)
    return JSONResponse(stored, status_code=201 if new else 200)


@router.get("/v1/calls/{call_id}/evaluations", summary="The evaluation results of a call")
def get_results(
    call_id: str,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
) -> JSONResponse:
    _visible_call(db, principal, call_id)
    with db.read() as conn:
        return JSONResponse({"evaluations": store.results_of(conn, call_id)})


@router.get("/v1/evaluations/costs", summary="What evaluations (their judges' LLM calls) cost")
def get_costs(
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    group_by: Annotated[
        str, Query(description="Comma-separated: vendor, evaluation, provider, model (the judge's).")
    ] = "vendor",
    since: Annotated[str | None, Query(description="ISO 8601, inclusive: evaluations run from then.")] = None,
    until: Annotated[str | None, Query(description="ISO 8601, exclusive.")] = None,
    project: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    groups = store.parse_cost_groups(group_by)
    scoped = principal.scoped_project(project)
    lo, hi = parse_time("since", since), parse_time("until", until)
    if lo is not None and hi is not None and hi < lo:
        raise ValidationError("until", "is before since")
    with db.read() as conn:
        rows = store.evaluation_costs(conn, groups, since=lo, until=hi, project=scoped)
    return JSONResponse({"rows": rows})


__all__ = ["router"]
