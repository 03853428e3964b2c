"""`GET /metrics`: Prometheus text exposition of the whole cluster (see `server/metrics.py`).

Scrapers authenticate like any client (`authorization: {credentials: <key>}` in the scrape
config). An admin key sees every project's calls and the ingest counters; a project key sees
its project's calls only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tokentrail.server import metrics
from tokentrail.server.api.deps import database, require_principal
from tokentrail.server.auth import Principal
from tokentrail.server.db import rollups
from tokentrail.server.db.engine import Database

router = APIRouter(tags=["metrics"])


def _scrape(db: Database, counters: metrics.IngestCounters | None, principal: Principal) -> bytes:
    rollups.catch_up(db)  # calls the SDK wrote straight into the file count too
    return metrics.exposition(db, counters, project=principal.project, admin=principal.admin)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_metrics(
    request: Request,
    principal: Annotated[Principal, Depends(require_principal)],
    db: Annotated[Database, Depends(database)],
) -> Response:
    counters = getattr(request.app.state, "ingest_counters", None)
    body = await run_in_threadpool(_scrape, db, counters, principal)
    return Response(body, media_type=metrics.CONTENT_TYPE)


__all__ = ["router"]
