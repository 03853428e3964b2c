"""`GET /v1/calls` (filtered, cursor-paginated, newest first) and `GET /v1/calls/{id}` (with its
evaluation results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from tokentrail.server.api.deps import database, require_principal, scoped_filter, settings
from tokentrail.server.api.errors import ApiError
from tokentrail.server.auth import Principal
from tokentrail.server.db.calls import get_call, list_calls
from tokentrail.server.db.engine import Database
from tokentrail.server.db.evaluations import results_of
from tokentrail.server.db.filters import CallFilter
from tokentrail.server.settings import ServerSettings

router = APIRouter(tags=["calls"])


@router.get("/v1/calls", summary="Calls matching the filters, newest first")
def get_calls(
    flt: Annotated[CallFilter, Depends(scoped_filter)],
    db: Annotated[Database, Depends(database)],
    config: Annotated[ServerSettings, Depends(settings)],
    limit: Annotated[int, Query(ge=1, description="Page size (at most the server's max_page_size).")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> JSONResponse:
    with db.read() as conn:
        records, next_cursor = list_calls(conn, flt, limit=min(limit, config.max_page_size), cursor=cursor)
    return JSONResponse({"calls": records, "next_cursor": next_cursor})


@router.get("/v1/calls/{call_id}", summary="One call record")
def get_one_call(
    call_id: str,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
) -> JSONResponse:
    record = None
    if "\x00" not in call_id:  # no stored id has one (PostgreSQL text cannot hold it)
        with db.read() as conn:
            record = get_call(conn, call_id, project=None if principal.admin else principal.project)
            evaluations = results_of(conn, call_id) if record is not None else []
    if record is None:
        # Another project's call is "not found" too: an answer must not reveal it exists.
        raise ApiError(404, "call not found")
    if evaluations:  # the record plus its evaluation results (seed 001); absent when none
        record["evaluations"] = evaluations
    return JSONResponse(record)
