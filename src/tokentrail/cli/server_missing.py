"""Stand-ins for the collector commands when the `server` extra is not installed: they exist,
so `tokentrail --help` shows them, and say exactly what to install."""

from __future__ import annotations

import typer

from tokentrail.cli.app import app
from tokentrail.core import MissingExtraError

_HINT = str(MissingExtraError("server", "the collector server"))


def _missing() -> None:
    typer.echo(_HINT, err=True)
    raise typer.Exit(2)


for _name in ("serve", "db", "keys", "reprice", "budgets"):
    app.command(
        _name,
        help=f"(needs the server extra) {_HINT}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )(_missing)
