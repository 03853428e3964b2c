"""The `tokentrail` command line: one module per command group, registered on one Typer app."""

from __future__ import annotations

from tokentrail.cli import demo, price
from tokentrail.cli.app import app

# The modules above register their commands on `app` when imported.
_COMMAND_MODULES = (demo, price)


def main() -> None:
    app()


__all__ = ["app", "main"]
