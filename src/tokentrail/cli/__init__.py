"""The `tokentrail` command line: one module per command group, registered on one Typer app."""

from __future__ import annotations

from types import ModuleType

from tokentrail.cli import demo, mock_provider, price
from tokentrail.cli.app import app

# The modules register their commands on `app` when imported.
_COMMAND_MODULES: tuple[ModuleType, ...] = (demo, mock_provider, price)
try:
    from tokentrail.cli import db, keys, serve

    _COMMAND_MODULES += (db, keys, serve)
except ImportError:  # the collector commands need the `server` extra (FastAPI, SQLAlchemy, ...)
    from tokentrail.cli import server_missing

    _COMMAND_MODULES += (server_missing,)


def main() -> None:
    app()


__all__ = ["app", "main"]
