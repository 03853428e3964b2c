"""`POST /v1/reprice` (admin keys only): recompute the cost of stored calls with the current
catalog and the overrides file the server is configured with (`TOKENTRAIL_PRICES`, read again
at each request, so an edited file applies without a restart), and report the difference.
`dry_run` reports without writing. See `server/db/reprice.py`.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tokentrail.core import ValidationError
from tokentrail.pricing import PRICES_ENV, PriceEngine
from tokentrail.server.api.deps import database, parse_time, require_principal
from tokentrail.server.api.errors import ApiError
from tokentrail.server.auth import Principal
from tokentrail.server.db import reprice as store
from tokentrail.server.db.engine import Database

router = APIRouter(tags=["pricing"])


class RepriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Annotated[str | None, Field(description="ISO 8601 time or date, inclusive (calls' started_at).")] = None
    until: Annotated[str | None, Field(description="ISO 8601 time or date, exclusive.")] = None
    project: Annotated[str | None, Field(min_length=1, description="Only this project's calls.")] = None
    dry_run: Annotated[bool, Field(strict=True, description="Report the difference, change nothing.")] = False


def _run(db: Database, body: RepriceIn) -> dict[str, object]:
    since, until = parse_time("since", body.since), parse_time("until", body.until)
    if since is not None and until is not None and until < since:
        raise ValidationError("until", "is before since")
    if body.project is not None and "\x00" in body.project:
        raise ValidationError("project", "must not contain a NUL character")
    engine = PriceEngine(overrides=os.environ.get(PRICES_ENV) or None)
    report = store.reprice(db, engine, since=since, until=until, project=body.project, dry_run=body.dry_run)
    return report.to_dict()


@router.post("/v1/reprice", summary="Reprice stored calls with the current prices (admin)")
async def post_reprice(
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
    body: RepriceIn | None = None,
) -> JSONResponse:
    if not principal.admin:
        raise ApiError(403, "repricing needs an admin key")
    return JSONResponse(await run_in_threadpool(_run, db, body or RepriceIn()))


__all__ = ["router"]
