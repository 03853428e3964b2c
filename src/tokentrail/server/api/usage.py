"""`GET /v1/usage?group_by=model,day&...`: sums and latency percentiles from the rollups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from tokentrail.server.api.deps import database, scoped_filter
from tokentrail.server.db import rollups
from tokentrail.server.db.engine import Database
from tokentrail.server.db.filters import CallFilter
from tokentrail.server.db.usage import GROUP_KEYS, parse_group_by, usage

router = APIRouter(tags=["usage"])


@router.get("/v1/usage", summary="Calls, errors, tokens, cost and p50/p95 latency by group")
def get_usage(
    flt: Annotated[CallFilter, Depends(scoped_filter)],
    db: Annotated[Database, Depends(database)],
    group_by: Annotated[str | None, Query(description=f"Comma-separated: {', '.join(GROUP_KEYS)}.")] = None,
) -> JSONResponse:
    keys = parse_group_by(group_by)
    rollups.catch_up(db)  # calls the SDK wrote straight into the file since the last look
    with db.read() as conn:
        result = usage(conn, keys, flt)
    return JSONResponse({"rows": result.rows, "sources": result.sources})
