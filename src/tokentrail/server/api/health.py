"""`GET /health`: no key needed; 200 when the database answers, 503 otherwise."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tokentrail.server.api.deps import database
from tokentrail.server.db.engine import Database

router = APIRouter(tags=["health"])


@router.get("/health")
def health(db: Annotated[Database, Depends(database)]) -> JSONResponse:
    try:
        with db.read() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "database": db.dialect_name, "error": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "database": db.dialect_name})
