"""`create_app(settings)`: the collector's FastAPI application.

At start (the lifespan) it migrates the database to head (unless `settings.migrate` is off,
then it refuses a database that is not at head), seeds `TOKENTRAIL_ADMIN_KEY`, and folds
into the rollups any calls the SDK wrote straight into the file. State lives in the
database only, so several instances can serve one PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from tokentrail.server import auth, metrics
from tokentrail.server.api import ROUTERS, errors
from tokentrail.server.db import migrate, rollups
from tokentrail.server.db.engine import Database
from tokentrail.server.settings import ServerSettings

logger = logging.getLogger("tokentrail.server")


def _version() -> str:
    try:
        return version("tokentrail")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def prepare(db: Database, settings: ServerSettings) -> None:
    """Migrations, the admin key and the rollup catch-up: everything done before serving."""
    if settings.migrate:
        migrate.upgrade(db.engine)
    else:
        at, head = migrate.current(db.engine), migrate.head()
        if at != head:
            raise RuntimeError(
                f"database {db.display_url} is at revision {at}, not {head}: run `tokentrail db upgrade`"
            )
    if settings.admin_key:
        with db.write() as conn:
            auth.seed_admin_key(conn, settings.admin_key)
    folded = rollups.catch_up(db)
    if folded:
        logger.info("tokentrail: added %d calls written by the SDK to the rollups", folded)


def create_app(settings: ServerSettings) -> FastAPI:
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous, pool_size=settings.pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(prepare, db, settings)
        try:
            yield
        finally:
            db.dispose()

    app = FastAPI(
        title="tokentrail collector",
        version=_version(),
        description="Exact cost, usage and latency of every LLM call. All endpoints but /health need an API key.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    errors.install(app)
    metrics.install(app)  # ingest counters for GET /metrics
    for router in ROUTERS:
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker serving: settings from TOKENTRAIL_*."""
    return create_app(ServerSettings.load())


__all__ = ["app_from_env", "create_app", "prepare"]
