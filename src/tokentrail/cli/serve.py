"""`tokentrail serve`: run the collector (FastAPI on uvicorn) over SQLite or PostgreSQL."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
import uvicorn

from tokentrail.cli.app import app
from tokentrail.core import ValidationError
from tokentrail.server.app import create_app, prepare
from tokentrail.server.dashboard import LOGIN_TOKEN_TTL, issue_login_token, login_url
from tokentrail.server.db.engine import Database
from tokentrail.server.settings import DEFAULT_HOST, DEFAULT_PORT, ServerSettings

DB_HELP = "Database URL: postgresql://user@host/db, sqlite:///path, or a file path. Default: the SDK's SQLite file."


def load_settings(**values: Any) -> ServerSettings:
    """Server settings from options over TOKENTRAIL_* variables; a bad value exits with 2."""
    try:
        return ServerSettings.load(**values)
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("serve")
def serve(
    db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    max_body_bytes: Annotated[int | None, typer.Option("--max-body-bytes", help="Request body limit.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Run the collector: migrations first, then the HTTP API (all endpoints but /health need a key)."""
    settings = load_settings(database_url=db, host=host, port=port, max_body_bytes=max_body_bytes)
    database = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        prepare(database, settings)  # migrate once here, not once per worker
        token = issue_login_token(database)
    finally:
        database.dispose()
    typer.echo(f"tokentrail collector on http://{settings.host}:{settings.port} (database {database.display_url})")
    minutes = int(LOGIN_TOKEN_TTL.total_seconds() // 60)
    typer.echo(f"Dashboard: {login_url(settings.host, settings.port, token)} (one-time login link, {minutes} minutes)")
    ready = settings.with_changes(migrate=False)
    if workers == 1:
        uvicorn.run(create_app(ready), host=settings.host, port=settings.port, log_level=log_level)
        return
    os.environ.update(ready.to_env())
    uvicorn.run(
        "tokentrail.server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=log_level,
    )
