"""The `tokentrail` command line: one module per command group, registered on one Typer app."""

from __future__ import annotations

from types import ModuleType

from tokentrail.cli import demo, export, mock_provider, price, report, whatif
from tokentrail.cli.app import app

# The modules register their commands on `app` when imported.
_COMMAND_MODULES: tuple[ModuleType, ...] = (demo, export, mock_provider, price, report, whatif)
try:
    from tokentrail.cli import budgets, db, keys, reprice, serve

    _COMMAND_MODULES += (budgets, db, keys, reprice, serve)
except ImportError:  # the collector commands need the `server` extra (FastAPI, SQLAlchemy, ...)
    from tokentrail.cli import server_missing

    _COMMAND_MODULES += (server_missing,)


def main() -> None:
    app()


__all__ = ["app", "main"]
