"""`tokentrail db upgrade|downgrade|current`: the collector database's Alembic migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from tokentrail.cli.app import app
from tokentrail.cli.serve import DB_HELP, load_settings
from tokentrail.server.db import migrate
from tokentrail.server.db.engine import Database

db_app = typer.Typer(no_args_is_help=True, help="Migrate the collector database (SQLite or PostgreSQL).")
app.add_typer(db_app, name="db")


def _database(url: str | None) -> Database:
    settings = load_settings(database_url=url)
    return Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
) -> None:
    """Migrate up to REVISION (default: the newest). Adopts a file the SDK created."""
    database = _database(db)
    try:
        before = migrate.current(database.engine)
        migrate.upgrade(database.engine, revision)
        typer.echo(f"{database.display_url}: {before or 'empty'} -> {migrate.current(database.engine)}")
    finally:
        database.dispose()


@db_app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: -1, base, or a revision id.")] = "-1",
    db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
) -> None:
    """Migrate down to REVISION (default: one step). `base` drops every table, calls included."""
    database = _database(db)
    try:
        before = migrate.current(database.engine)
        migrate.downgrade(database.engine, revision)
        typer.echo(f"{database.display_url}: {before or 'empty'} -> {migrate.current(database.engine) or 'base'}")
    finally:
        database.dispose()


@db_app.command("current")
def current(db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None) -> None:
    """Print the database's revision and the newest one shipped."""
    database = _database(db)
    try:
        typer.echo(f"{database.display_url}: {migrate.current(database.engine) or 'base'} (head {migrate.head()})")
    finally:
        database.dispose()
