"""`tokentrail keys create|list|revoke`: project and admin API keys of the collector."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tokentrail.cli.app import app
from tokentrail.cli.serve import DB_HELP, load_settings
from tokentrail.core import ValidationError
from tokentrail.server import auth
from tokentrail.server.db import migrate
from tokentrail.server.db.engine import Database

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the collector (stored hashed).")
app.add_typer(keys_app, name="keys")


def _database(url: str | None) -> Database:
    settings = load_settings(database_url=url)
    database = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    migrate.upgrade(database.engine)  # a fresh database gets its tables, as `serve` would
    return database


@keys_app.command("create")
def create(
    project: Annotated[str | None, typer.Option("--project", help="The project the key writes to and reads.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="A key that sees every project.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="A label to recognise the key by.")] = None,
    db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
) -> None:
    """Create a key and print it (the last word of the output). It is shown only this once."""
    database = _database(db)
    try:
        with database.write() as conn:
            key, key_id = auth.create_key(conn, project=project, admin=admin, name=name)
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    scope = "admin" if admin else f"project {project}"
    typer.echo(f"created key {key_id} ({scope}); store it now, it cannot be shown again: {key}")


@keys_app.command("list")
def list_keys(
    project: Annotated[str | None, typer.Option("--project", help="Only this project's keys.")] = None,
    db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
) -> None:
    """List keys (prefix only; the keys themselves are not stored)."""
    database = _database(db)
    try:
        with database.read() as conn:
            keys = auth.list_keys(conn, project=project)
    finally:
        database.dispose()
    table = Table(header_style="bold")
    for column in ("id", "prefix", "scope", "name", "created", "revoked"):
        table.add_column(column)
    for info in keys:
        table.add_row(
            str(info.id),
            info.prefix + "…",
            "admin" if info.admin else f"project {info.project}",
            info.name or "",
            info.created_at.strftime("%Y-%m-%d %H:%M"),
            info.revoked_at.strftime("%Y-%m-%d %H:%M") if info.revoked_at else "",
        )
    Console(width=None if Console().is_terminal else 160).print(table)


@keys_app.command("revoke")
def revoke(
    key: Annotated[str | None, typer.Argument(help="Key id, prefix or the key itself; omit to revoke all.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Only this project's keys.")] = None,
    db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
) -> None:
    """Revoke one key, or every active key of --project."""
    database = _database(db)
    try:
        with database.write() as conn:
            count = auth.revoke_keys(conn, project=project, key=key)
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    typer.echo(f"revoked {count} key(s)")
    if count == 0:
        raise typer.Exit(1)
